//! One sampling session: a device's probes attached, the baseline read at
//! once (whoever waits for the session finds every later packet counted),
//! then one delta per period. trace, serve and lab all sample through it.
use crate::{
    kernel::attach::{Options, ProbeError, Probes},
    kernel::collect::{Collector, Totals},
    model::verdict,
    sys::iface::{self, Iface},
};

pub(crate) struct Session {
    pub(crate) iface: Iface,
    pub(crate) probes: Probes,
    collector: Collector,
}

impl Session {
    /// Attach the probes to `iface` and take the baseline reading.
    pub(crate) fn attach(iface: Iface, opts: &Options) -> Result<Session, ProbeError> {
        let probes = Probes::attach(&iface, opts)?;
        let collector = Collector::new(&mut probes.source())
            .map_err(|e| ProbeError::Other(e.context("reading the probes' first counts")))?;
        Ok(Session {
            iface,
            probes,
            collector,
        })
    }

    /// What the probes counted since the previous reading.
    pub(crate) fn interval(&mut self) -> anyhow::Result<Totals> {
        self.collector.interval(&mut self.probes.source())
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
