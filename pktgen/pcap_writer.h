// --pcap FILE: the packets the generator would send, for other generators
// (dpdk-testpmd's pcap PMD, tcpreplay, Pktgen-DPDK). Classic libpcap format
// (magic a1b2c3d4, version 2.4, LINKTYPE_ETHERNET), written without libpcap.
// Slow path; no EAL.
#pragma once

#include <cstdint>
#include <string>

#include "flow_set.h"
#include "options.h"

namespace l4lb::pktgen {

// Writes the warm-up openers (one per flow, while they fit in
// o.pcap_count), then the measured phase's packets of o.mode up to
// o.pcap_count in all. Stamps carry tsc 0. Timestamps in the file are spaced
// at o.rate_pps (1 Mpps when unlimited). Returns how many were written;
// throws std::runtime_error on I/O errors or std::invalid_argument for modes
// with nothing to send.
uint64_t write_pcap(const Options& o, const FlowSet& flows);

}  // namespace l4lb::pktgen
