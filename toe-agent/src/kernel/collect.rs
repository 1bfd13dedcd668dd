//! From per-CPU kernel counters to interval deltas.
//!
//! A [`Source`] yields cumulative [`Totals`] (already summed over CPUs where
//! that is meaningful); [`Collector`] keeps the previous reading and hands
//! out the difference. Tests feed it recorded or synthetic totals.
use std::collections::BTreeMap;

use toe_agent_common::Hist;

/// How a family's map is kept in [`Totals`] (the kinds of
/// [`crate::probes::registry`]): `summed` over CPUs (a one-entry per-CPU
/// array), `per_cpu` (one value per CPU number, for what is judged per
/// CPU), `by_id` (a per-CPU hash map by id, summed over CPUs).
macro_rules! part {
    (type summed $t:ty) => { $t };
    (type per_cpu $t:ty) => { Vec<$t> };
    (type by_id $t:ty) => { BTreeMap<u32, $t> };
    (zero summed $t:ty) => { <$t as Counters>::zero() };
    (zero per_cpu $t:ty) => { Vec::new() };
    (zero by_id $t:ty) => { BTreeMap::new() };
    (add summed $a:expr, $b:expr) => { Counters::add($a, $b) };
    (add per_cpu $a:expr, $b:expr) => { add_per_cpu($a, $b) };
    (add by_id $a:expr, $b:expr) => { add_by_id($a, $b) };
    (delta summed $a:expr, $b:expr) => { Counters::sub($a, $b) };
    (delta per_cpu $a:expr, $b:expr) => { delta_per_cpu($a, $b) };
    (delta by_id $a:expr, $b:expr) => { delta_by_id($a, $b) };
}

/// [`Totals`] and its arithmetic, one field per map of
/// [`crate::probes::registry`].
macro_rules! totals {
    ($($(#[$attr:meta])* $section:ident: $block:ident {
        $($family:ident: [$($field:ident: $kind:ident $t:ty = $map:literal),+ $(,)?]),+ $(,)?
    }),+ $(,)?) => {
        /// The counts of every map of the probe families over a span: one
        /// field per map (its value is defined in
        /// `probes/<family>/layout.rs`). A reading ([`Totals::read`])
        /// spans the time since the programs were loaded; a period's
        /// totals are the difference of two readings ([`Totals::delta`]),
        /// or the sum of such differences ([`Totals::add`]).
        #[derive(Clone, Debug)]
        pub struct Totals {
            $($($(pub $field: part!(type $kind $t),)+)+)+
        }

        impl Default for Totals {
            fn default() -> Self {
                Totals {
                    $($($($field: part!(zero $kind $t),)+)+)+
                }
            }
        }

        impl Totals {
            /// Accumulate `other` (a later period) into `self`.
            pub fn add(&mut self, other: &Totals) {
                $($($(part!(add $kind &mut self.$field, &other.$field);)+)+)+
            }

            /// `self - earlier`, for an interval.
            pub fn delta(&self, earlier: &Totals) -> Totals {
                Totals {
                    $($($($field: part!(delta $kind &self.$field, &earlier.$field),)+)+)+
                }
            }

            /// Every map, read through `maps`.
            pub(crate) fn read(maps: &impl Maps) -> anyhow::Result<Totals> {
                Ok(Totals {
                    $($($($field: maps.$kind::<$t>($map)?,)+)+)+
                })
            }
        }
    };
}

crate::probes::registry::registered!(totals);

/// Reads a family's map as its kind says (see [`part`]).
pub(crate) trait Maps {
    fn summed<T: aya::Pod + Counters>(&self, map: &str) -> anyhow::Result<T>;
    fn per_cpu<T: aya::Pod>(&self, map: &str) -> anyhow::Result<Vec<T>>;
    fn by_id<T: aya::Pod + Counters>(&self, map: &str) -> anyhow::Result<BTreeMap<u32, T>>;
}

/// Per-CPU values: a CPU that came online since counts from zero.
fn add_per_cpu<T: Counters + Clone>(mine: &mut Vec<T>, theirs: &[T]) {
    if mine.len() < theirs.len() {
        mine.resize(theirs.len(), T::zero());
    }
    for (m, t) in mine.iter_mut().zip(theirs) {
        m.add(t);
    }
}

fn delta_per_cpu<T: Counters>(now: &[T], earlier: &[T]) -> Vec<T> {
    let zero = T::zero();
    now.iter()
        .enumerate()
        .map(|(cpu, n)| n.sub(earlier.get(cpu).unwrap_or(&zero)))
        .collect()
}

fn add_by_id<T: Counters>(mine: &mut BTreeMap<u32, T>, theirs: &BTreeMap<u32, T>) {
    for (id, v) in theirs {
        mine.entry(*id).or_insert_with(T::zero).add(v);
    }
}

/// Ids with nothing new drop out of a delta.
fn delta_by_id<T: Counters>(
    now: &BTreeMap<u32, T>,
    earlier: &BTreeMap<u32, T>,
) -> BTreeMap<u32, T> {
    now.iter()
        .map(|(id, n)| {
            let d = match earlier.get(id) {
                Some(e) => n.sub(e),
                None => n.sub(&T::zero()),
            };
            (*id, d)
        })
        .filter(|(_, d)| !d.idle())
        .collect()
}

pub(crate) trait Source {
    fn read(&mut self) -> anyhow::Result<Totals>;
}

/// Monotonic counters that can be summed (over CPUs) and differenced (over
/// time). Wrapping arithmetic: a counter never goes back, but if a reading
/// ever raced a reset the result must not panic.
pub(crate) trait Counters: Sized {
    fn zero() -> Self;
    fn add(&mut self, other: &Self);
    fn sub(&self, earlier: &Self) -> Self;
    /// A difference with nothing in it, to leave out of a `by_id` delta.
    fn idle(&self) -> bool {
        false
    }
}

impl Counters for u64 {
    fn zero() -> Self {
        0
    }
    fn add(&mut self, other: &Self) {
        *self = self.wrapping_add(*other);
    }
    fn sub(&self, earlier: &Self) -> Self {
        self.wrapping_sub(*earlier)
    }
}

impl<T: Counters, const N: usize> Counters for [T; N] {
    fn zero() -> Self {
        std::array::from_fn(|_| T::zero())
    }
    fn add(&mut self, other: &Self) {
        self.iter_mut().zip(other).for_each(|(a, b)| a.add(b));
    }
    fn sub(&self, earlier: &Self) -> Self {
        std::array::from_fn(|i| self[i].sub(&earlier[i]))
    }
}

/// Implements [`Counters`] field by field; fields not listed (program state)
/// are zero in sums and differences.
macro_rules! counters {
    ($t:ty { $($f:ident),+ $(,)? } $(rest: $($z:ident),+)?) => {
        impl $crate::kernel::collect::Counters for $t {
            fn zero() -> Self {
                Self {
                    $($f: $crate::kernel::collect::Counters::zero(),)+
                    $($($z: $crate::kernel::collect::Counters::zero(),)+)?
                }
            }
            fn add(&mut self, other: &Self) {
                $($crate::kernel::collect::Counters::add(&mut self.$f, &other.$f);)+
            }
            fn sub(&self, earlier: &Self) -> Self {
                Self {
                    $($f: $crate::kernel::collect::Counters::sub(&self.$f, &earlier.$f),)+
                    $($($z: $crate::kernel::collect::Counters::zero(),)+)?
                }
            }
        }
    };
}
pub(crate) use counters;

counters!(Hist { buckets, sum });

/// Sum of per-CPU values.
pub(crate) fn sum<'a, T: Counters + 'a>(values: impl IntoIterator<Item = &'a T>) -> T {
    let mut total = T::zero();
    values.into_iter().for_each(|v| total.add(v));
    total
}

/// Turns a [`Source`]'s cumulative readings into interval deltas.
pub(crate) struct Collector {
    start: Totals,
    last: Totals,
}

impl Collector {
    /// Takes the baseline reading: counts before this moment are not reported.
    pub(crate) fn new(source: &mut impl Source) -> anyhow::Result<Self> {
        let start = source.read()?;
        Ok(Collector {
            last: start.clone(),
            start,
        })
    }

    /// What happened since the previous call.
    #[cfg(test)]
    pub(crate) fn interval(&mut self, source: &mut impl Source) -> anyhow::Result<Totals> {
        Ok(self.advance(source.read()?))
    }

    /// What happened from the previous reading to `now`, a reading taken
    /// by the caller.
    pub(crate) fn advance(&mut self, now: Totals) -> Totals {
        let delta = now.delta(&self.last);
        self.last = now;
        delta
    }

    /// What happened since `new`, up to the last `interval` reading.
    pub(crate) fn run_total(&self) -> Totals {
        self.last.delta(&self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toe_agent_common::{NapiIdStats, SoftirqStats, hist::bucket_index};

    fn hist_of(values: &[u64]) -> Hist {
        let mut h = Hist::ZERO;
        for &v in values {
            h.buckets[bucket_index(v)] += 1;
            h.sum += v;
        }
        h
    }

    #[test]
    fn histograms_merge_across_cpus() {
        let cpu0 = hist_of(&[1500, 1500, 64]);
        let cpu1 = hist_of(&[1500, 65_000]);
        let total = sum([&cpu0, &cpu1]);
        assert_eq!(total.count(), 5);
        assert_eq!(total.sum, 1500 * 3 + 64 + 65_000);
        assert_eq!(total.buckets[bucket_index(1500)], 3);
        assert_eq!(total.buckets[bucket_index(65_000)], 1);
    }

    /// A source replaying a list of cumulative readings.
    struct Replay(std::vec::IntoIter<Totals>);
    impl Source for Replay {
        fn read(&mut self) -> anyhow::Result<Totals> {
            self.0
                .next()
                .ok_or_else(|| anyhow::anyhow!("replay exhausted"))
        }
    }

    fn reading(segments: u64, bytes_per: u64, cpu_time: &[u64]) -> Totals {
        let mut t = Totals::default();
        t.handoff.segment_len.buckets[bucket_index(bytes_per)] = segments;
        t.handoff.segment_len.sum = segments * bytes_per;
        t.handoff.segment_csum[0] = segments;
        t.softirq = cpu_time
            .iter()
            .map(|&ns| {
                let mut s = SoftirqStats::zero();
                s.time_ns[1] = ns;
                s.count[1] = ns / 1000;
                s.entry_ts[1] = 12345; // state: never reported
                s
            })
            .collect();
        t
    }

    #[test]
    fn intervals_are_deltas_and_the_run_total_is_their_sum() {
        let readings = vec![
            reading(100, 1500, &[1000, 0]),
            reading(160, 1500, &[4000, 2000]),
            reading(400, 1500, &[9000, 2000]),
        ];
        let mut replay = Replay(readings.into_iter());
        let mut c = Collector::new(&mut replay).unwrap();
        let a = c.interval(&mut replay).unwrap();
        assert_eq!(a.handoff.segment_len.count(), 60);
        assert_eq!(a.handoff.segment_len.sum, 60 * 1500);
        assert_eq!(a.softirq[0].time_ns[1], 3000);
        assert_eq!(a.softirq[1].time_ns[1], 2000);
        assert_eq!(a.softirq[0].entry_ts[1], 0);
        let b = c.interval(&mut replay).unwrap();
        assert_eq!(b.handoff.segment_len.count(), 240);
        assert_eq!(b.softirq[1].time_ns[1], 0);
        let total = c.run_total();
        assert_eq!(total.handoff.segment_len.count(), 300);
        assert_eq!(total.handoff.segment_csum[0], 300);
        assert_eq!(total.softirq[0].time_ns[1], 8000);
    }

    #[test]
    fn napi_ids_without_polls_drop_out_of_a_delta() {
        let mut a = Totals::default();
        a.napi_by_id.insert(
            8193,
            NapiIdStats {
                polls: 5,
                work: 50,
                budget_exhausted: 0,
                budget: 64,
            },
        );
        let mut b = a.clone();
        b.napi_by_id.insert(
            8194,
            NapiIdStats {
                polls: 2,
                work: 128,
                budget_exhausted: 2,
                budget: 64,
            },
        );
        let d = b.delta(&a);
        assert_eq!(d.napi_by_id.len(), 1);
        assert_eq!(d.napi_by_id[&8194].budget_exhausted, 2);
    }

    #[test]
    fn adding_periods_gives_the_total() {
        let a = reading(100, 1500, &[1000, 0]);
        let b = reading(50, 1500, &[10, 20, 30]);
        let mut t = Totals::default();
        t.add(&a);
        t.add(&b);
        assert_eq!(t.handoff.segment_len.count(), 150);
        assert_eq!(t.softirq.len(), 3);
        assert_eq!(t.softirq[0].time_ns[1], 1010);
        assert_eq!(t.softirq[2].time_ns[1], 30);
    }

    #[test]
    fn a_new_cpu_counts_from_zero() {
        let a = reading(0, 1, &[10]);
        let b = reading(0, 1, &[10, 70]);
        assert_eq!(b.delta(&a).softirq[1].time_ns[1], 70);
    }
}
