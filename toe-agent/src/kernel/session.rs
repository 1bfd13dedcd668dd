//! One sampling session: a device's probes attached, the baseline read at
//! once (whoever waits for the session finds every later packet counted),
//! then one delta per period. trace, serve and lab all sample through it.
use crate::{
    kernel::attach::{Options, ProbeError, Probes},
    kernel::collect::{Collector, Totals},
    model::{nic::Nic, period::Blocks, verdict},
    sys::{
        iface::{self, Iface},
        nic,
    },
};

pub(crate) struct Session {
    pub(crate) iface: Iface,
    pub(crate) probes: Probes,
    collector: Collector,
    /// The driver's counters at the baseline, at the last reading, and
    /// their rise over the last period: read with the maps, so that both
    /// sides cover the same time.
    nic_start: nic::Reading,
    nic_last: nic::Reading,
    nic_period: nic::Reading,
}

impl Session {
    /// Attach the probes to `iface` and take the baseline reading.
    pub(crate) fn attach(iface: Iface, opts: &Options) -> Result<Session, ProbeError> {
        let probes = Probes::attach(&iface, opts)?;
        let collector = Collector::new(&mut probes.source())
            .map_err(|e| ProbeError::Other(e.context("reading the probes' first counts")))?;
        let nic_start = nic::Reading::take(&iface.name, iface.index);
        Ok(Session {
            iface,
            probes,
            collector,
            nic_last: nic_start.clone(),
            nic_period: nic::Reading::default(),
            nic_start,
        })
    }

    /// What the probes counted since the previous reading.
    pub(crate) fn interval(&mut self) -> anyhow::Result<Totals> {
        let totals = self.collector.interval(&mut self.probes.source())?;
        let now = nic::Reading::take(&self.iface.name, self.iface.index);
        self.nic_period = now.since(&self.nic_last);
        self.nic_last = now;
        Ok(totals)
    }

    /// The driver's word on the last period, beside the probes' `b`.
    pub(crate) fn nic(&self, b: &Blocks) -> Nic {
        let p = &self.nic_period;
        Nic::of(
            p.qstats.clone(),
            p.qstats_error.clone(),
            p.counters.clone(),
            b,
        )
    }

    /// The driver's word on the whole session, beside the probes' `b`.
    pub(crate) fn nic_run(&self, b: &Blocks) -> Nic {
        let r = self.nic_last.since(&self.nic_start);
        Nic::of(r.qstats, r.qstats_error, r.counters, b).with_ring(r.rx_ring)
    }

    /// The programs' diagnostics since the last call.
    pub(crate) fn kernel_log(&mut self) -> Vec<String> {
        self.probes.kernel_log()
    }

    /// What they counted since the session began, up to the last reading.
    pub(crate) fn run_total(&self) -> Totals {
        self.collector.run_total()
    }

    /// What the verdicts need to know about the device now.
    pub(crate) fn device(&self) -> verdict::Device {
        iface::device(&self.iface, self.probes.coverage)
    }

    /// The traced device still exists (a device of the same name that came
    /// back is another device, with another index).
    pub(crate) fn present(&self) -> bool {
        iface::index_of(&self.iface.name) == Some(self.iface.index)
    }
}
