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
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fetchProfile saves the profile a child serves at url to path.
func fetchProfile(url, path string) error {
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Get(url) // #nosec G107 -- the child's loopback profile port
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path) // #nosec G304 -- under bin/bench
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// cpuProfile profiles this process (the manager runs in it) until the
// returned function is called.
func cpuProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path) // #nosec G304 -- under bin/bench
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// attachProfile quotes the top functions of the profile at path (flat and
// cumulative) in the row, and keeps them beside it as text.
func (b *bench) attachProfile(r *row, path string) {
	rel, err := filepath.Rel(b.root, path)
	if err != nil {
		rel = path
	}
	r.Profile = rel
	var quoted []string
	for _, sort := range []string{"-flat", "-cum"} {
		out, err := exec.Command("go", "tool", "pprof", "-top", sort, "-nodecount=25", path).Output() // #nosec G204 -- fixed arguments
		if err != nil {
			logf("%s: go tool pprof: %v", r.ID, err)
			return
		}
		quoted = append(quoted, trimPprof(string(out)))
	}
	r.ProfileTop = strings.Join(quoted, "\n\n")
	_ = os.WriteFile(strings.TrimSuffix(path, ".pprof")+".top.txt", []byte(r.ProfileTop+"\n"), 0o600)
}

// trimPprof drops pprof's header lines that name local files.
func trimPprof(s string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// apiserverShares are the parts of kube-apiserver's CPU profile that tell
// where an issued key's cost goes, by the function that accounts for them.
var apiserverShares = []struct{ what, fn string }{
	{"all request handling (finishRequest)", "handlers/finisher.finishRequest.func1"},
	{"storage updates (GuaranteedUpdate: patches, applies, status writes)", "storage/etcd3.(*store).GuaranteedUpdate"},
	{"of which CRD status writes (APIKey status)", "customresource.(*StatusREST).Update"},
	{"managed fields (server-side apply bookkeeping)", "managedfields/internal.(*FieldManager).Update"},
	{"APIKey creates", "(*crdHandler).serveResource.CreateResource.createHandler.func9.2"},
	{"admission webhook calls (mutating)", "webhook/mutating.(*mutatingDispatcher).Dispatch"},
	{"admission webhook calls (validating)", "webhook/validating.(*validatingDispatcher).Dispatch"},
	{"watch fan-out", "handlers.(*WatchServer).HandleHTTP"},
	{"client certificate checks (test control plane's x509 auth)", "authentication/request/x509.(*Authenticator).AuthenticateRequest"},
	{"garbage collection", "runtime.gcBgMarkWorker"},
}

// fetchAPIServerProfile saves kube-apiserver's CPU profile over d to path.
func (b *bench) fetchAPIServerProfile(ctx context.Context, d time.Duration, path string) error {
	raw, err := b.cluster.clientset.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", strconv.Itoa(int(d.Seconds()))).Timeout(d + time.Minute).DoRaw(ctx)
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}

// shares quotes, from the profile at path, the cumulative share of each
// of apiserverShares.
func shares(path string) string {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=5000", path).Output() // #nosec G204 -- fixed arguments
	if err != nil {
		return "no profile: " + err.Error()
	}
	var parts []string
	for _, sh := range apiserverShares {
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) >= 6 && strings.HasSuffix(f[5], sh.fn) {
				parts = append(parts, fmt.Sprintf("%s %s", sh.what, f[4]))
				break
			}
		}
	}
	return strings.Join(parts, "; ")
}

// apiserverRequests reads kube-apiserver's apiserver_request_total from its
// /metrics, summed by "VERB resource[/subresource]".
func (b *bench) apiserverRequests(ctx context.Context) (map[string]float64, error) {
	raw, err := b.cluster.apiserverMetrics(ctx)
	if err != nil {
		return nil, err
	}
	return parseRequestTotals(raw), nil
}

// apiserverMetrics is kube-apiserver's /metrics, in the text exposition
// format.
func (c *cluster) apiserverMetrics(ctx context.Context) (string, error) {
	raw, err := c.clientset.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	return string(raw), err
}

// parseRequestTotals sums apiserver_request_total samples of the text
// exposition format by verb and resource.
func parseRequestTotals(text string) map[string]float64 {
	out := map[string]float64{}
	for labels, v := range samples(text, "apiserver_request_total") {
		what := labels["resource"]
		if sub := labels["subresource"]; sub != "" {
			what += "/" + sub
		}
		out[labels["verb"]+" "+what] += v
	}
	return out
}

// sumSamples sums the samples of the metric name whose labels include all
// of want.
func sumSamples(text, name string, want map[string]string) float64 {
	var sum float64
	for labels, v := range samples(text, name) {
		if matchLabels(labels, want) {
			sum += v
		}
	}
	return sum
}

func matchLabels(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// samples yields the samples of the metric name in the text exposition
// format, with their labels (none for an unlabelled sample).
func samples(text, name string) func(yield func(map[string]string, float64) bool) {
	return func(yield func(map[string]string, float64) bool) {
		for _, l := range strings.Split(text, "\n") {
			labels, value, ok := sample(l, name)
			if ok && !yield(labels, value) {
				return
			}
		}
	}
}

// sample parses one line of the text exposition format if it is a sample
// of the metric name: `name value` or `name{k="v",...} value`.
func sample(line, name string) (map[string]string, float64, bool) {
	rest, ok := strings.CutPrefix(line, name)
	if !ok || rest == "" {
		return nil, 0, false
	}
	labels := map[string]string{}
	switch rest[0] {
	case ' ':
	case '{':
		end := strings.LastIndexByte(rest, '}')
		if end < 0 {
			return nil, 0, false
		}
		for _, kv := range strings.Split(rest[1:end], ",") {
			if k, val, ok := strings.Cut(kv, "="); ok {
				labels[k] = strings.Trim(val, `"`)
			}
		}
		rest = rest[end+1:]
	default: // another metric whose name starts with this one's
		return nil, 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
	return labels, v, err == nil
}

// firstSample is the value of the first sample of name in text, whatever
// its labels.
func firstSample(text, name string) (float64, bool) {
	for _, v := range samples(text, name) {
		return v, true
	}
	return 0, false
}

// metricsText fetches a /metrics page in the text exposition format.
func metricsText(url string) (string, error) {
	resp, err := http.Get(url) // #nosec G107 -- a loopback address this program chose
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// requestsPerKey renders the requests kube-apiserver served between two
// readings, per key, largest first: "CREATE apikeys 1.00, …".
func requestsPerKey(before, after map[string]float64, keys int) string {
	type entry struct {
		what string
		n    float64
	}
	var es []entry
	var total float64
	for k, v := range after {
		d := v - before[k]
		total += d
		if d >= float64(keys)/20 {
			es = append(es, entry{k, d})
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(b.n, a.n) })
	parts := make([]string, 0, len(es))
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("%s %.2f", e.what, e.n/float64(keys)))
	}
	return fmt.Sprintf("%.2f in all; at least 0.05 per key: %s", total/float64(keys), strings.Join(parts, ", "))
}
