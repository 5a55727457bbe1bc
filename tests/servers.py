"""Real `vitrine serve` processes for tests: the benchmarks' helper (benchmarks/servers.py),
started on a free loopback port, waited for, always stopped."""

from benchmarks.servers import ROOT as ROOT
from benchmarks.servers import serving as serving
