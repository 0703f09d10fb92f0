package harness

import "time"

// Run is one line of a results file: one run of one workload.
type Run struct {
	Time     time.Time `json:"time"`
	Workload string    `json:"workload"`
	// Comparison and Label are set by the comparison driver (bench/compare):
	// the comparison a run belongs to and which side of it the run is.
	Comparison string  `json:"comparison,omitempty"`
	Label      string  `json:"label,omitempty"`
	Command    string  `json:"command,omitempty"` // what the driver ran
	Params     Params  `json:"params"`
	Machine    Machine `json:"machine"`
	Results    Results `json:"results"`
}

// Params are the parameters of a run.
type Params struct {
	Broker           string  `json:"broker"`      // "embedded" or "external"
	BrokerImpl       string  `json:"broker_impl"` // weir or kfake when embedded; "" when external
	Records          int64   `json:"records"`
	RecordSize       int     `json:"record_size,omitempty"`
	Keys             int     `json:"keys"`
	Partitions       int     `json:"partitions"`
	Acks             string  `json:"acks"`
	Compression      string  `json:"compression"`
	LingerMs         float64 `json:"linger_ms"`
	Rate             float64 `json:"rate"` // records/s; 0 is as fast as possible
	Client           string  `json:"client"`
	Engine           string  `json:"engine,omitempty"` // stream workloads: weir or goka
	CommitIntervalMs float64 `json:"commit_interval_ms,omitempty"`
	Guarantee        string  `json:"processing_guarantee,omitempty"`
}

// Results are what a run measured; rates are over its measured phase.
type Results struct {
	Records          int64        `json:"records"`
	Seconds          float64      `json:"seconds"`
	RecordsPerSec    float64      `json:"records_per_sec"`
	MBPerSec         float64      `json:"mb_per_sec"`
	UnitName         string       `json:"unit_name,omitempty"` // e.g. words, for word count
	UnitsPerSec      float64      `json:"units_per_sec,omitempty"`
	Dropped          int64        `json:"dropped,omitempty"`
	LatencyKind      string       `json:"latency_kind,omitempty"` // produce→ack, produce→consume or produce→result
	Latency          *Latency     `json:"latency,omitempty"`
	CDF              []Percentile `json:"latency_cdf,omitempty"`
	ClientCPUSeconds float64      `json:"client_cpu_seconds"`
	ClientPeakRSSMiB float64      `json:"client_peak_rss_mib"`
	BrokerCPUSeconds *float64     `json:"broker_cpu_seconds,omitempty"`
	BrokerPeakRSSMiB *float64     `json:"broker_peak_rss_mib,omitempty"`
}
