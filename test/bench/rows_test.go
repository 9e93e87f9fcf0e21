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
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRowsRenderFromData renders every row from measured-looking data: the
// verdict follows the figures against the target, and no text is left
// half-formatted.
func TestRowsRenderFromData(t *testing.T) {
	ms := time.Millisecond
	fast := stat{rps: 40000, p50: 300 * time.Microsecond, p99: 4 * ms, cpu: 20 * time.Microsecond}
	slow := stat{rps: 12000, p50: 900 * time.Microsecond, p99: 9 * ms, cpu: 60 * time.Microsecond}
	opts := options{conns: 16, duration: 5 * time.Second, warmup: time.Second, rounds: 3}
	hk := hashedKeys{Created: 100000, ThroughAPI: 5000, APITook: 10 * time.Second, EtcdTook: 4 * time.Second}
	cpu := map[string]time.Duration{"bench": time.Second, "kube-apiserver": 2 * time.Second}
	c1 := &c1Result{keys: 1000, ready: 1000, took: time.Second, latencies: []time.Duration{ms, 2 * ms}, floor: []time.Duration{time.Second, time.Second},
		floorCPU: []map[string]time.Duration{cpu, cpu}, cpu: cpu, writes: []string{"create Secret: 1000"}, writesTotal: 3150}
	tests := []struct {
		r       *row
		id, met string
	}{
		{v1Data{floor: fast, verifier: fast, timed: fast, one: fast, busy: []stat{fast, slow}, lightFloor: fast, lightVerifier: fast, keys: 100000,
			handler: handlerTimes{count: 100, within5us: 90, within25us: 99, over1ms: 0.1},
			answers: answerPair{floorStatus: 200, status: 200, header: http.Header{"X-Auth-Key": {"kw_abcd"}}, floorHeader: http.Header{"X-Auth-Key": {"kw_abcd"}}},
			hz:      250, opts: opts}.row("go run ./test/bench -only V1"), "V1", "met"},
		{v1Data{floor: fast, verifier: slow, timed: fast, one: slow, lightFloor: fast, lightVerifier: slow, opts: opts,
			handler: handlerTimes{err: "connection refused"}, answers: answerPair{err: "Checking the verifier's answer: refused"}}.row(""), "V1", "missed"},
		{t1Data{floor: fast, verifier: slow, timed: fast, alone: fast, traefik: "v3.6.12", keys: 100001, opts: opts}.row(""), "T1", "missed"},
		{v7Data{keys: 100000, big: keywardStart{peak: 90 << 20, settled: 80 << 20}, empty: keywardStart{peak: 20 << 20, settled: 15 << 20}}.row(""), "V7", "met"},
		{v2Data{id: "V2b", floor: fast, verifier: slow, goFloor: slow, nginx: "1.22.1", workers: 2, keys: 100000, opts: opts}.row(""), "V2b", "missed"},
		{v3Data{verify: &goBenchmark{nsPerOp: []float64{340}, allocsPerOp: []float64{0}, bytesPerOp: []float64{0}}, floor: &goBenchmark{nsPerOp: []float64{90}},
			serve: &goBenchmark{nsPerOp: []float64{800}, allocsPerOp: []float64{0}}, par: &goBenchmark{nsPerOp: []float64{500}}}.row(), "V3", "met"},
		{v45Data{hk: hk, readies: []time.Duration{3 * time.Second}, heaps: []float64{30 << 20}, gcs: []time.Duration{ms}}.v5Row(""), "V5", "met"},
		{v45Data{hk: hk, readies: []time.Duration{3 * time.Second}, heaps: []float64{30 << 20}, gcs: []time.Duration{ms}}.v4Row(""), "V4", "met"},
		{c1.c1Row("C1", "10 applications × 100 keys", "", profileShares{path: "bin/bench/c1.pprof", shares: "50% etcd"}), "C1", "met"},
		{c1.c2Row(""), "C2", "met"},
		{c1aData{keys: 1000, took: 2 * time.Second, floors: []time.Duration{time.Second, time.Second}, cpu: cpu, floorCPU: []map[string]time.Duration{cpu, cpu},
			statusCPU: cpu, eventCPU: cpu}.row(""), "C1a", "—"},
		{resyncData{keys: 1000, reconciles: 1000, writes: 1, settled: time.Second}.row(""), "C2-resync", "missed"},
		{c3Data{n: 20, accept: []time.Duration{50 * ms}, refuse: []time.Duration{300 * ms}}.row(""), "C3", "missed"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if tt.r.ID != tt.id || tt.r.Met != tt.met && !strings.Contains(tt.r.Met, tt.met) {
				t.Errorf("%s: met %q, want %q", tt.r.ID, tt.r.Met, tt.met)
			}
			for _, s := range append([]string{tt.r.What, tt.r.Figure, tt.r.Floor, tt.r.Ratio, tt.r.Target}, tt.r.Details...) {
				if strings.Contains(s, "%!") {
					t.Errorf("%s: half-formatted text: %s", tt.r.ID, s)
				}
			}
		})
	}
}

// TestWritesEveryKeyTakes: C1a's bound adds up the writes of an issued key
// (admission, the floor's two Secrets, status, event) and compares the
// floor with their sum.
func TestWritesEveryKeyTakes(t *testing.T) {
	per := func(ms int) map[string]time.Duration { // CPU for 1,000 keys, ms per key
		return map[string]time.Duration{"kube-apiserver": time.Duration(ms) * time.Second}
	}
	d := c1aData{keys: 1000, cpu: per(6), floorCPU: []map[string]time.Duration{per(3), per(5)}, statusCPU: per(7), eventCPU: per(2)}
	if got, want := d.least(), 19*time.Millisecond; got != want {
		t.Fatalf("least = %v, want %v: admission 6 + floor 4 (the mean of 3 and 5) + status 7 + event 2", got, want)
	}
	if got, want := d.bound(), 4.0/19; math.Abs(got-want) > 1e-9 {
		t.Fatalf("bound = %v, want floor ÷ least = %v", got, want)
	}
}
