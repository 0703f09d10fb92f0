package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weir-io/weir/bench/harness"
)

// natsClientCmd makes this program the NATS client of one run, in a
// process of its own so that its CPU and memory are its own.
const natsClientCmd = "nats-client"

// natsSide is a NATS JetStream side: publish or consume on a file-storage
// stream replicated over replicas nats-server processes.
type natsSide struct {
	mode     string // publish or consume
	replicas int
	records  string
}

func (n *natsSide) command() string {
	return fmt.Sprintf("nats-server -js -sd DIR -a 127.0.0.1 -p 4222%s & go run ./bench/compare %s --url nats://127.0.0.1:4222 --mode %s --replicas %d --records %s",
		map[bool]string{true: " --cluster_name … (×3)", false: ""}[n.replicas > 1], natsClientCmd, n.mode, n.replicas, n.records)
}

// natsPlan compares weir with NATS JetStream on one stream (one
// partition): R1 against one broker, and R3 against a weir cluster if
// one is given.
func (d *driver) natsPlan() []*comparison {
	if d.cfg.natsPath == "" {
		d.skipped = append(d.skipped, "NATS JetStream: nats-server is not installed (apt-get install nats-server).")
		return nil
	}
	n := d.n(1_000_000)
	weir := func(workload string, extra ...string) *side {
		return weirSide("weir", append([]string{"bench", workload, "--records", n, "--partitions", "1"}, extra...)...)
	}
	nt := func(mode string, replicas int) *side {
		return &side{label: fmt.Sprintf("NATS R%d", replicas), nats: &natsSide{mode: mode, replicas: replicas, records: n}}
	}
	cs := []*comparison{
		{name: "nats-r1-publish", title: "publish, 100 B, one partition/stream, one node: weir (acks=all) vs NATS JetStream R1 (file)", metric: throughput,
			a: weir("produce", "--embedded"), b: nt("publish", 1)},
		{name: "nats-r1-consume", title: "consume the same: weir vs NATS JetStream R1 ordered consumer", metric: throughput,
			a: weir("consume", "--embedded"), b: nt("consume", 1)},
	}
	if d.cfg.cluster == "" {
		d.skipped = append(d.skipped, "weir RF3 vs NATS JetStream R3: pass -cluster with a running 3-broker weir cluster's bootstrap list.")
		return cs
	}
	cluster := []string{"--brokers", d.cfg.cluster, "--replication-factor", "3"}
	return append(cs,
		&comparison{name: "nats-r3-publish", title: "publish, 100 B, one partition/stream, 3 nodes on loopback: weir RF3 vs NATS R3", metric: throughput,
			a: weir("produce", cluster...), b: nt("publish", 3)},
		&comparison{name: "nats-r3-consume", title: "consume the same: weir RF3 vs NATS R3", metric: throughput,
			a: weir("consume", cluster...), b: nt("consume", 3)},
	)
}

// runNATS starts fresh servers, runs the client in a child process and
// stops the servers.
func (d *driver) runNATS(ctx context.Context, n *natsSide, results string) error {
	servers, err := startNATS(ctx, d.cfg.natsPath, n.replicas)
	if err != nil {
		return err
	}
	defer servers.stop()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, natsClientCmd, "--url", servers.urls(), "--mode", n.mode,
		"--replicas", strconv.Itoa(n.replicas), "--records", n.records, "--results", results, "--broker-pids", servers.pids())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nats client: %w\n%s", err, out)
	}
	return nil
}

// natsServers are nats-server processes on loopback.
type natsServers struct {
	cmds  []*exec.Cmd
	ports []int
	dir   string
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startNATS(ctx context.Context, bin string, n int) (*natsServers, error) {
	dir, err := os.MkdirTemp("", "weir-compare-nats-")
	if err != nil {
		return nil, err
	}
	s := &natsServers{dir: dir}
	clusterPorts := make([]int, n)
	for i := range n {
		p, err1 := freePort()
		c, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			s.stop()
			return nil, err
		}
		s.ports, clusterPorts[i] = append(s.ports, p), c
	}
	for i := range n {
		args := []string{"-js", "-sd", filepath.Join(dir, strconv.Itoa(i)), "-a", "127.0.0.1", "-p", strconv.Itoa(s.ports[i]),
			"-n", fmt.Sprintf("bench-%d", i)}
		if n > 1 {
			var routes []string
			for j, c := range clusterPorts {
				if j != i {
					routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", c))
				}
			}
			args = append(args, "--cluster_name", "weirbench", "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", clusterPorts[i]),
				"--routes", strings.Join(routes, ","))
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			s.stop()
			return nil, fmt.Errorf("starting nats-server: %w", err)
		}
		s.cmds = append(s.cmds, cmd)
	}
	return s, s.waitListening(ctx)
}

// waitListening polls until every server accepts connections.
func (s *natsServers) waitListening(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range s.ports {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				s.stop()
				return fmt.Errorf("nats-server on port %d did not start: %v", p, err)
			}
			time.Sleep(20 * time.Millisecond) // polling a port that is not open yet
		}
	}
	return nil
}

func (s *natsServers) urls() string {
	var us []string
	for _, p := range s.ports {
		us = append(us, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	return strings.Join(us, ",")
}

func (s *natsServers) pids() string {
	var ps []string
	for _, c := range s.cmds {
		ps = append(ps, strconv.Itoa(c.Process.Pid))
	}
	return strings.Join(ps, ",")
}

func (s *natsServers) stop() {
	for _, c := range s.cmds {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}
	os.RemoveAll(s.dir)
}

// natsClient is one run of the NATS client.
type natsClient struct {
	mode, results string
	replicas      int
	records       int64
	size          int
	pids          []int
	js            jetstream.JetStream
	hist          *harness.Histogram
	done          atomic.Int64
	base          time.Time
}

func natsClientMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(natsClientCmd, flag.ContinueOnError)
	c := &natsClient{}
	url := fs.String("url", nats.DefaultURL, "server URLs, comma-separated")
	pids := fs.String("broker-pids", "", "the servers' process ids, comma-separated, for their CPU and memory")
	fs.StringVar(&c.mode, "mode", "publish", "publish or consume")
	fs.IntVar(&c.replicas, "replicas", 1, "the stream's replicas")
	fs.Int64Var(&c.records, "records", 1_000_000, "messages")
	fs.IntVar(&c.size, "size", 100, "message bytes")
	fs.StringVar(&c.results, "results", "", "append the result as a JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, p := range strings.Split(*pids, ",") {
		if pid, err := strconv.Atoi(p); err == nil {
			c.pids = append(c.pids, pid)
		}
	}
	nc, err := nats.Connect(*url)
	if err != nil {
		return err
	}
	defer nc.Close()
	c.hist = harness.NewHistogram()
	c.base = time.Now()
	if c.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncAckHandler(c.acked)); err != nil {
		return err
	}
	if err := c.createStream(ctx); err != nil {
		return err
	}
	return c.run(ctx)
}

const natsStream, natsSubject = "BENCH", "bench"

// createStream retries while a new cluster elects its JetStream leader.
func (c *natsClient) createStream(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: natsStream, Subjects: []string{natsSubject},
			Storage: jetstream.FileStorage, Replicas: c.replicas})
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond) // waiting for the cluster's meta leader
	}
}

// acked records a publish's latency from the send time stamped into its
// first eight bytes.
func (c *natsClient) acked(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
	if sent := int64(binary.BigEndian.Uint64(m.Data)); sent > 0 {
		c.hist.Record(time.Since(c.base) - time.Duration(sent))
		c.done.Add(1)
	}
}

func (c *natsClient) run(ctx context.Context) error {
	// Unmeasured first: the messages to consume, or as many as weir
	// bench produce warms up with.
	warmup := int64(1000)
	if c.mode == "consume" {
		warmup = c.records
	}
	if err := c.publish(ctx, warmup, false); err != nil {
		return err
	}
	u0, err := c.usage()
	if err != nil {
		return err
	}
	start := time.Now()
	if c.mode == "consume" {
		err = c.consume(ctx)
	} else {
		err = c.publish(ctx, c.records, true)
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	u1, err := c.usage()
	if err != nil {
		return err
	}
	return harness.AppendJSONL(c.results, c.result(elapsed, u0, u1))
}

// publish sends n messages asynchronously and waits for the acks; stamped
// messages carry their send time for the latency.
func (c *natsClient) publish(ctx context.Context, n int64, stamped bool) error {
	rng := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, c.size)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	for range n {
		m := append([]byte(nil), payload...)
		if stamped {
			binary.BigEndian.PutUint64(m, uint64(time.Since(c.base)))
		} else {
			binary.BigEndian.PutUint64(m, 0)
		}
		for {
			_, err := c.js.PublishAsync(natsSubject, m)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return err
			}
		}
	}
	select {
	case <-c.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// consume reads the stream from its start with an ordered consumer.
func (c *natsClient) consume(ctx context.Context) error {
	cons, err := c.js.OrderedConsumer(ctx, natsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	for c.done.Load() < c.records {
		if _, err := it.Next(); err != nil {
			return err
		}
		c.done.Add(1)
	}
	return nil
}

// usage is this process's and the servers' usage so far.
func (c *natsClient) usage() ([2]harness.Usage, error) {
	self, err := harness.Self()
	if err != nil {
		return [2]harness.Usage{}, err
	}
	var servers harness.Usage
	for _, pid := range c.pids {
		u, err := harness.Proc(pid)
		if err != nil {
			return [2]harness.Usage{}, err
		}
		servers.CPUSeconds += u.CPUSeconds
		servers.PeakRSSBytes += u.PeakRSSBytes
	}
	return [2]harness.Usage{self, servers}, nil
}

func (c *natsClient) result(elapsed time.Duration, u0, u1 [2]harness.Usage) harness.Run {
	const mib = 1 << 20
	sec := elapsed.Seconds()
	res := harness.Results{
		Records: c.records, Seconds: sec, RecordsPerSec: float64(c.records) / sec,
		MBPerSec:         float64(c.records) * float64(c.size) / sec / 1e6,
		ClientCPUSeconds: u1[0].CPUSeconds - u0[0].CPUSeconds, ClientPeakRSSMiB: float64(u1[0].PeakRSSBytes) / mib,
	}
	if c.mode == "publish" {
		l := c.hist.Summary()
		res.Latency, res.LatencyKind, res.CDF = &l, "publish→ack", c.hist.CDF()
	}
	if len(c.pids) > 0 {
		cpu, rss := u1[1].CPUSeconds-u0[1].CPUSeconds, float64(u1[1].PeakRSSBytes)/mib
		res.BrokerCPUSeconds, res.BrokerPeakRSSMiB = &cpu, &rss
	}
	return harness.Run{
		Time: time.Now().UTC(), Workload: "nats-" + c.mode,
		Params: harness.Params{Broker: "external", BrokerImpl: fmt.Sprintf("nats-server R%d", c.replicas),
			Records: c.records, RecordSize: c.size, Partitions: 1, Acks: "jetstream", Client: "nats.go"},
		Machine: harness.ThisMachine(), Results: res,
	}
}
