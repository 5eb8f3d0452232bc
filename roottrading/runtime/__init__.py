"""Service runtime: Service base, context, host, HTTP app."""

from roottrading.runtime.context import Context
from roottrading.runtime.host import Host
from roottrading.runtime.service import Consumes, HealthStatus, Job, Service
from roottrading.runtime.wiring import Wiring

__all__ = ["Consumes", "Context", "HealthStatus", "Host", "Job", "Service", "Wiring"]
