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
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestParseHistogramSum(t *testing.T) {
	const name = requestDuration
	body := `# HELP keyward_verifier_request_duration_seconds Time to answer.
# TYPE keyward_verifier_request_duration_seconds histogram
keyward_verifier_request_duration_seconds_bucket{le="5e-06"} 10
keyward_verifier_request_duration_seconds_bucket{le="+Inf"} 20
keyward_verifier_request_duration_seconds_sum 0.0001
keyward_verifier_request_duration_seconds_count 20
keyward_verifier_requests_total{namespace="a",keygroup="b",reason="ok"} 20
`
	h, err := parseHistogramSum(body)
	if err != nil {
		t.Fatal(err)
	}
	if h.sum != 0.0001 || h.count != 20 {
		t.Fatalf("got %+v", h)
	}
	if _, err := parseHistogramSum("other_sum 1\n"); err == nil {
		t.Fatal("a body without the histogram parsed")
	}
	// A metric whose name only starts with the histogram's is not it.
	h, err = parseHistogramSum(name + "_sum_total 7\n" + name + "_count_total 8\n" + name + "_sum 2\n" + name + "_count 4\n")
	if err != nil || h.sum != 2 || h.count != 4 {
		t.Fatalf("with longer names before it: %+v, %v", h, err)
	}
	before := histogramSum{sum: 0.0001, count: 20}
	after := histogramSum{sum: 0.0001 + 0.5, count: 20 + 100_000}
	if got := meanBetween(before, after); got != 5*time.Microsecond {
		t.Fatalf("meanBetween = %s, want 5µs", got)
	}
	if got := meanBetween(before, before); got != 0 {
		t.Fatalf("meanBetween of no requests = %s", got)
	}
}

func TestPairedRatio(t *testing.T) {
	us := func(xs ...float64) requestRounds {
		var r requestRounds
		for _, x := range xs {
			r.means = append(r.means, time.Duration(x*float64(time.Microsecond)))
		}
		return r
	}
	// The pairs' ratios are 2, 1 and 3: their median is 2, where the
	// medians of the rounds (4 and 2) would say 2 as well only by chance.
	if got := pairedRatio(us(2, 4, 6), us(1, 4, 2)); got != 2 {
		t.Fatalf("pairedRatio = %v, want 2", got)
	}
	// A slow moment falls on both rounds of a pair and cancels.
	if got := pairedRatio(us(4, 40, 4), us(4, 40, 4)); got != 1 {
		t.Fatalf("pairedRatio of equal pairs = %v, want 1", got)
	}
	if got := pairedRatio(us(1), us(0)); !math.IsNaN(got) || got <= 1.1 {
		t.Fatalf("pairedRatio without a usable pair = %v, want NaN (no target met)", got)
	}
}

func TestEtcdStatus(t *testing.T) {
	// As etcd's JSON gateway writes it: int64s as strings.
	body := `{"header":{"cluster_id":"1","member_id":"2","revision":"345","raft_term":"2"},"version":"3.6.16","dbSize":"25165824","leader":"2","raftIndex":"400","raftTerm":"2","raftAppliedIndex":"400","dbSizeInUse":"12582912","storageVersion":"3.6.0"}`
	var s etcdStatus
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	if s.Header.Revision != 345 || s.DBSize != 25165824 || s.DBSizeInUse != 12582912 || s.Version != "3.6.16" {
		t.Fatalf("got %+v", s)
	}
}

func TestPrefixEnd(t *testing.T) {
	for in, want := range map[string]string{
		"/registry/secrets/ns/": "/registry/secrets/ns0",
		"a\xff":                 "b",
		"\xff\xff":              "\x00",
	} {
		if got := prefixEnd(in); got != want {
			t.Errorf("prefixEnd(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestV6Base(t *testing.T) {
	for n, want := range map[int]int{1_000_000: 100_000, 200_000: 100_000, 100_000: 10_000, 5: 1} {
		if got := v6Base(n); got != want {
			t.Errorf("v6Base(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestParseMemInfo(t *testing.T) {
	total, avail := parseMemInfo("MemTotal:       24684084 kB\nMemFree:         6006572 kB\nMemAvailable:   22118000 kB\n")
	if total != 24684084*1024 || avail != 22118000*1024 {
		t.Fatalf("got %.0f, %.0f", total, avail)
	}
	if got := lowMemory(total); got != total/10 {
		t.Fatalf("lowMemory(%.0f) = %.0f", total, got)
	}
	if got := lowMemory(8 << 30); got != 2<<30 {
		t.Fatalf("lowMemory(8 GiB) = %.0f", got)
	}
}

// The watch cache's freshness and its fallbacks to etcd are read from
// kube-apiserver's metrics by label: another resource's or another group's
// samples must not count.
func TestSumSamples(t *testing.T) {
	text := `# TYPE apiserver_watch_cache_resource_version gauge
apiserver_watch_cache_resource_version{group="",resource="configmaps"} 900
apiserver_watch_cache_resource_version{group="",resource="secrets"} 1.000123e+06
apiserver_watch_cache_resource_version{group="keyward.dev",resource="secrets"} 7
apiserver_watch_cache_consistent_read_total{fallback="false",group="",resource="secrets",success="true"} 4
apiserver_watch_cache_consistent_read_total{fallback="true",group="",resource="secrets",success="true"} 2
apiserver_watch_cache_consistent_read_total{fallback="true",group="",resource="secrets",success="false"} 1
apiserver_request_total{code="201",component="apiserver",group="",resource="secrets",verb="POST",version="v1"} 3
apiserver_request_total{code="409",component="apiserver",group="",resource="secrets",verb="POST",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",group="",resource="apikeys",subresource="status",verb="PATCH",version="v1alpha1"} 5
`
	if got := sumSamples(text, "apiserver_watch_cache_resource_version", secretsCache); got != 1000123 {
		t.Errorf("watch cache revision of Secrets: %v, want 1000123", got)
	}
	if got := sumSamples(text, "apiserver_watch_cache_consistent_read_total", map[string]string{"fallback": "true", "group": "", "resource": "secrets"}); got != 3 {
		t.Errorf("fallbacks: %v, want 3", got)
	}
	got := parseRequestTotals(text)
	if got["POST secrets"] != 4 || got["PATCH apikeys/status"] != 5 || len(got) != 2 {
		t.Errorf("request totals: %v, want POST secrets 4 and PATCH apikeys/status 5", got)
	}
}

// The CPU of the control plane's processes is read by finding them among
// this process's children by name.
func TestChildren(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if got := childPID("sleep"); got != cmd.Process.Pid {
		t.Errorf("childPID(sleep) = %d, want %d", got, cmd.Process.Pid)
	}
	if got := childPID("no-such-child"); got != 0 {
		t.Errorf("childPID(no-such-child) = %d, want 0", got)
	}
	if _, ok := processCPU()["sleep"]; !ok {
		t.Errorf("processCPU has no entry for the child sleep: %v", processCPU())
	}
}

// findEtcd reads the client URL from the command line of the child named
// etcd (here a shell script by that name, which waits).
func TestFindEtcd(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "etcd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nsleep 30\n"), 0o700); err != nil { // #nosec G306 -- an executable in a test directory
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--listen-client-urls=http://127.0.0.1:2379,http://127.0.0.1:2380", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	store, err := findEtcd()
	if err != nil {
		t.Fatal(err)
	}
	if store.url != "http://127.0.0.1:2379" {
		t.Errorf("etcd client URL %q, want the first of --listen-client-urls, http://127.0.0.1:2379", store.url)
	}
}
