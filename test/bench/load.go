/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loadSpec is one closed-loop load run, in the manner of wrk: Conns
// keep-alive connections, each sending the same request as soon as the
// previous answer is read, for Duration after Warmup.
type loadSpec struct {
	// Addr is the target, host:port; only loopback addresses are accepted.
	Addr string
	// Request is the whole HTTP/1.1 request, sent as is.
	Request  []byte
	Conns    int
	Warmup   time.Duration
	Duration time.Duration
	// MaxRequests bounds the measured requests (0: 5,000,000).
	MaxRequests int64
	// PID, when set, is the server process whose CPU time per request is
	// reported.
	PID int
}

// loadResult is what a run measured.
type loadResult struct {
	Requests int64 // answered 200 while measuring
	Non200   int64 // other answers while measuring
	Errors   int64 // connection or parse errors while measuring
	Elapsed  time.Duration
	RPS      float64
	P50, P90 time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
	Status   map[int]int64 // non-200 statuses seen
	// CPUPerRequest is the server process's CPU time (user and system)
	// per answered request, when loadSpec.PID is set.
	CPUPerRequest time.Duration
	// WaitPerRequest is the time the server's threads spent runnable but
	// waiting for a core, per answered request, and SlicesPerRequest how
	// many times they were put on one; LoadWaitPerRequest is the load
	// generator's own wait.
	WaitPerRequest, LoadWaitPerRequest time.Duration
	SlicesPerRequest                   float64
	// Over is the share of answered requests slower than each of overMarks.
	Over [len(overMarks)]float64
	// Stalled is the share of the requests slower than stallMark that were
	// slow together with at least half of the connections' requests: the
	// server (or the load generator) was off the CPU for all of them at
	// once, rather than one request being slow to answer. It is measured
	// with minStallConns connections or more.
	Stalled float64
}

// stallMark is the latency over which loadResult.Stalled looks at requests:
// where a saturated run's tail gathers, near a 4 ms scheduler tick.
const stallMark = 3 * time.Millisecond

// minStallConns is the fewest connections with which loadResult.Stalled
// means anything: with fewer, half of them is one or two requests.
const minStallConns = 8

// overMarks are the latencies at which loadResult.Over counts the tail.
var overMarks = [...]time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond, 5 * time.Millisecond}

func (r loadResult) String() string {
	s := fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, p99.9 %s", r.RPS, fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.P999))
	if r.CPUPerRequest > 0 {
		s += fmt.Sprintf(", server CPU %.1f µs/req, run-queue wait %.1f µs/req over %.2f slices/req (load generator's %.1f µs/req)", float64(r.CPUPerRequest)/float64(time.Microsecond),
			float64(r.WaitPerRequest)/float64(time.Microsecond), r.SlicesPerRequest, float64(r.LoadWaitPerRequest)/float64(time.Microsecond))
	}
	if r.Stalled > 0 {
		s += fmt.Sprintf(", stalls: %.0f%% of the requests over %s", 100*r.Stalled, fmtDur(stallMark))
	}
	return s + fmt.Sprintf(" (%d requests, %d non-200, %d errors)", r.Requests, r.Non200, r.Errors)
}

// anyLoopback is a listen address on 127.0.0.1, any port.
const anyLoopback = "127.0.0.1:0"

// maxSamples bounds the latency samples a run keeps (8 bytes each).
const maxSamples = 5_000_000

// runLoad runs one load run.
func runLoad(spec loadSpec) (loadResult, error) {
	if err := checkLoopback(spec.Addr); err != nil {
		return loadResult{}, err
	}
	if spec.Conns <= 0 || spec.Duration <= 0 {
		return loadResult{}, errors.New("load: connections and duration must be positive")
	}
	if spec.MaxRequests <= 0 || spec.MaxRequests > maxSamples {
		spec.MaxRequests = maxSamples
	}
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		budget    atomic.Int64 // measured requests left
		wg        sync.WaitGroup
	)
	budget.Store(spec.MaxRequests)
	workers := make([]*loadWorker, spec.Conns)
	perWorker := int(spec.MaxRequests)/spec.Conns + 1
	for i := range workers {
		w := &loadWorker{spec: &spec, samples: make([]int64, 0, min(perWorker, 1<<16)), status: map[int]int64{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(&measuring, &stop, &budget)
		}()
	}
	time.Sleep(spec.Warmup)
	cpu0 := pidCPU(spec.PID)
	wait0, slices0 := pidSched(spec.PID)
	self0, _ := pidSched(os.Getpid())
	start := time.Now()
	measuring.Store(true)
	deadline := time.NewTimer(spec.Duration)
	tick := time.NewTicker(10 * time.Millisecond)
	for done := false; !done; {
		select {
		case <-deadline.C:
			done = true
		case <-tick.C:
			done = budget.Load() <= 0
		}
	}
	tick.Stop()
	measuring.Store(false)
	elapsed := time.Since(start)
	cpu := pidCPU(spec.PID) - cpu0
	wait1, slices1 := pidSched(spec.PID)
	self1, _ := pidSched(os.Getpid())
	stop.Store(true)
	wg.Wait()

	res := loadResult{Elapsed: elapsed, Status: map[int]int64{}}
	all := res.add(workers)
	if res.Requests == 0 {
		return res, fmt.Errorf("load on %s: no request answered 200 (%d other answers %v, %d errors; last error: %v)",
			spec.Addr, res.Non200, res.Status, res.Errors, lastError(workers))
	}
	if spec.Conns >= minStallConns {
		res.Stalled = stalled(workers, spec.Conns)
	}
	slices.Sort(all)
	for i, m := range overMarks {
		at, _ := slices.BinarySearch(all, int64(m)+1)
		res.Over[i] = float64(len(all)-at) / float64(len(all))
	}
	res.RPS = float64(res.Requests) / elapsed.Seconds()
	res.P50, res.P90 = quantile(all, 0.50), quantile(all, 0.90)
	res.P99, res.P999 = quantile(all, 0.99), quantile(all, 0.999)
	res.Max = time.Duration(all[len(all)-1])
	if spec.PID > 0 {
		n := res.Requests + res.Non200
		res.CPUPerRequest = cpu / time.Duration(n)
		res.WaitPerRequest, res.LoadWaitPerRequest = (wait1-wait0)/time.Duration(n), (self1-self0)/time.Duration(n)
		res.SlicesPerRequest = float64(slices1-slices0) / float64(n)
	}
	return res, nil
}

// add counts the workers' answers into r and returns their latency
// samples, unsorted.
func (r *loadResult) add(workers []*loadWorker) []int64 {
	var all []int64
	for _, w := range workers {
		r.Requests += w.ok
		r.Non200 += w.non200
		r.Errors += w.errs
		all = append(all, w.samples...)
		for s, n := range w.status {
			r.Status[s] += n
		}
	}
	return all
}

func lastError(workers []*loadWorker) error {
	for _, w := range workers {
		if w.lastErr != nil {
			return w.lastErr
		}
	}
	return nil
}

// quantile returns the q-quantile of sorted nanosecond samples (nearest rank).
func quantile(sorted []int64, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return time.Duration(sorted[i])
}

// checkLoopback refuses any target that is not a loopback address: the
// benchmarks never send load anywhere else.
func checkLoopback(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("load: target %q: want ip:port: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return fmt.Errorf("load: target %s is not a loopback address", addr)
	}
	return nil
}

// loadWorker drives one connection, reconnecting when the server closes it
// (nginx does after keepalive_requests).
type loadWorker struct {
	spec    *loadSpec
	samples []int64
	ok      int64
	non200  int64
	errs    int64
	status  map[int]int64
	lastErr error
	slow    []span // the measured requests slower than stallMark
}

// span is a request's start and end, in Unix nanoseconds.
type span struct{ start, end int64 }

// stalled returns the share of the workers' slow requests during whose
// middle at least half of the conns connections were in a slow request.
func stalled(workers []*loadWorker, conns int) float64 {
	var slow []span
	for _, w := range workers {
		slow = append(slow, w.slow...)
	}
	if len(slow) == 0 {
		return 0
	}
	starts, ends := make([]int64, len(slow)), make([]int64, len(slow))
	for i, s := range slow {
		starts[i], ends[i] = s.start, s.end
	}
	slices.Sort(starts)
	slices.Sort(ends)
	n := 0
	for _, s := range slow {
		// In flight at mid: started at or before it, not ended before it.
		mid := s.start + (s.end-s.start)/2
		begun, _ := slices.BinarySearch(starts, mid+1)
		over, _ := slices.BinarySearch(ends, mid)
		if 2*(begun-over) >= conns {
			n++
		}
	}
	return float64(n) / float64(len(slow))
}

func (w *loadWorker) run(measuring, stop *atomic.Bool, budget *atomic.Int64) {
	var (
		conn net.Conn
		br   *bufio.Reader
	)
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	for !stop.Load() {
		if conn == nil {
			c, err := net.DialTimeout("tcp", w.spec.Addr, 2*time.Second)
			if err != nil {
				w.fail(measuring, err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			conn, br = c, bufio.NewReaderSize(c, 16<<10)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		t0 := time.Now()
		status, keep, err := roundTrip(conn, br, w.spec.Request)
		d := time.Since(t0)
		if err != nil {
			w.fail(measuring, err)
			_ = conn.Close()
			conn = nil
			continue
		}
		if !keep {
			_ = conn.Close()
			conn = nil
		}
		if !measuring.Load() {
			continue
		}
		if status != 200 {
			w.non200++
			w.status[status]++
			continue
		}
		w.ok++
		if budget.Add(-1) >= 0 {
			w.samples = append(w.samples, int64(d))
			if d > stallMark {
				w.slow = append(w.slow, span{t0.UnixNano(), t0.Add(d).UnixNano()})
			}
		}
	}
}

func (w *loadWorker) fail(measuring *atomic.Bool, err error) {
	w.lastErr = err
	if measuring.Load() {
		w.errs++
	}
}

// roundTrip writes req and reads one response: status line, headers, and a
// body framed by Content-Length or chunked encoding. It reports whether the
// connection may be reused.
func roundTrip(conn net.Conn, br *bufio.Reader, req []byte) (status int, keepAlive bool, err error) {
	if _, err := conn.Write(req); err != nil {
		return 0, false, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	keepAlive = line[7] == '1'
	length, chunked, closing, err := readHeaders(br)
	if err != nil {
		return 0, false, err
	}
	keepAlive = keepAlive && !closing
	switch {
	case chunked:
		err = discardChunked(br)
	case length >= 0:
		_, err = br.Discard(int(length))
	default:
		// No framing: the body runs to the end of the connection.
		_, err = io.Copy(io.Discard, br)
		keepAlive = false
	}
	return status, keepAlive, err
}

// readHeaders reads the header lines up to the blank line and returns the
// body's framing and whether the server closes the connection.
func readHeaders(br *bufio.Reader) (length int64, chunked, closing bool, err error) {
	length = -1
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			return length, chunked, closing, nil
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, false, fmt.Errorf("bad header line %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil {
				return 0, false, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		sizeText, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		size, err := strconv.ParseInt(string(sizeText), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			// Trailers, then the final blank line.
			for {
				t, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(size) + 2); err != nil {
			return err
		}
	}
}

// httpRequest renders a GET request with the given headers, in order.
func httpRequest(host, path string, headers ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, host)
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("User-Agent: keyward-bench\r\n\r\n")
	return b.Bytes()
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}
