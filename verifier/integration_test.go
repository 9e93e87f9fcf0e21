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

package verifier_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
	"github.com/keyward/keyward/verifier"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		// A fuzz worker runs only the fuzz target, which needs no control
		// plane. One started here would outlive a worker the fuzzing
		// coordinator kills, and hold the worker's pipes open.
		os.Exit(m.Run())
	}
	w := io.Discard
	if os.Getenv("KEYWARD_TEST_LOGS") != "" {
		w = os.Stderr
	}
	logf.SetLogger(zap.New(zap.WriteTo(w), zap.UseDevMode(true)))
	// Watches go to etcd and etcd compacts every second, so a verifier
	// cut off while things change finds its resource version gone
	// ("too old") when it comes back, and must relist.
	testenv.Main(m, &env, testenv.Options{APIServerFlags: map[string]string{
		"watch-cache": "false", "etcd-compaction-interval": "1s",
	}})
}

// stack is a manager and a verifier running against the test control plane.
type stack struct {
	ops, ns  string
	verifier *verifier.Server
	base     string
}

func startStack(t *testing.T, lastUsed time.Duration, opts ...func(*manager.Options)) *stack {
	t.Helper()
	env.Need(t)
	return startStackWith(t, lastUsed, env.Config, opts...)
}

// startStackWith runs the verifier with its own API server config (through
// an Outage proxy, say); the manager uses the direct one.
func startStackWith(t *testing.T, lastUsed time.Duration, verifierConfig *rest.Config, opts ...func(*manager.Options)) *stack {
	t.Helper()
	s := &stack{ops: env.Namespace(t), ns: env.Namespace(t)}
	o := manager.Options{
		Namespace: s.ops, WatchNamespaces: []string{s.ops, s.ns}, MetricsAddr: "0", ProbeAddr: "0",
	}
	for _, f := range opts {
		f(&o)
	}
	testenv.StartManager(t, env.Config, o)
	v := testenv.StartVerifier(t, verifierConfig, verifier.Options{Namespace: s.ops, LastUsedInterval: lastUsed})
	s.verifier = v
	s.base = "http://" + v.Addr
	testenv.Eventually(t, 20*time.Second, func() error {
		resp, err := http.Get("http://" + v.ProbeAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	return s
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// verify asks the verifier about a GET of path with key, as ingress-nginx would.
func (s *stack) verify(t *testing.T, key, path string) (int, string) {
	t.Helper()
	code, h := s.ask(t, key, path)
	return code, h.Get("X-Auth-Reason")
}

// ask is verify returning the answer's headers.
func (s *stack) ask(t *testing.T, key, path string) (int, http.Header) {
	t.Helper()
	code, h, err := s.askErr(key, path)
	if err != nil {
		t.Fatal(err)
	}
	return code, h
}

// askErr is ask for goroutines other than the test's, which may not stop
// it.
func (s *stack) askErr(key, path string) (int, http.Header, error) {
	return s.askAbout("things", key, path)
}

// askErrGroup asks about a GET of /v1/things/1 for the KeyGroup group.
func (s *stack) askErrGroup(group, key string) (int, http.Header, error) {
	return s.askAbout(group, key, "/v1/things/1")
}

func (s *stack) askAbout(group, key, path string) (int, http.Header, error) {
	req, _ := http.NewRequest(http.MethodGet, s.base+"/v1/verify/"+s.ns+"/"+group, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("X-Original-URL", "https://api.example.com"+path)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

// until polls the verifier every 2 ms until it answers status, for at most
// 10 s.
func (s *stack) until(t *testing.T, key string, status int) {
	t.Helper()
	s.within(t, key, status, 10*time.Second)
}

// within polls the verifier until it answers status, for at most limit,
// and returns how long that took.

func (s *stack) within(t *testing.T, key string, status int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if code, _ := s.verify(t, key, "/v1/things/1"); code == status {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("the verifier did not answer %d within %v", status, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ready(k *keywardv1alpha1.APIKey) bool {
	return meta.IsStatusConditionTrue(k.Status.Conditions, keywardv1alpha1.ConditionReady)
}

// issue creates a key and returns it once Ready, with its plaintext and the
// moment it was seen Ready.
func (s *stack) issue(t *testing.T, name string) (*keywardv1alpha1.APIKey, string, time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Create(ctx, testgen.APIKey(s.ns, name, "acme")); err != nil {
		t.Fatal(err)
	}
	k := &keywardv1alpha1.APIKey{}
	var readyAt time.Time
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: name}, k); err != nil {
			return err
		}
		if !ready(k) {
			return fmt.Errorf("not Ready: %+v", k.Status)
		}
		readyAt = time.Now()
		return nil
	})
	secret := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: k.DeliverySecretName()}, secret); err != nil {
		t.Fatal(err)
	}
	return k, string(secret.Data[record.DeliveryAPIKey]), readyAt
}

func (s *stack) setup(t *testing.T) {
	t.Helper()
	for _, o := range []client.Object{testgen.KeyGroup(s.ns, "things", testgen.WithLimits(10, 100)), testgen.Application(s.ns, "acme", "things")} {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

// TestChangesReachTheVerifier measures, over several keys, how long after
// an APIKey turns Ready the verifier accepts it, and how long after a key is
// disabled, revoked or deleted the verifier refuses it.
func TestChangesReachTheVerifier(t *testing.T) {
	s := startStack(t, time.Minute)
	s.setup(t)
	ctx := context.Background()
	const n = 5
	var accept, disable, revoke, del []time.Duration
	for i := range n {
		k, plaintext, readyAt := s.issue(t, fmt.Sprintf("key-%d", i))
		// The hashed Secret is written before the status, so the key is
		// usually accepted by the time Ready is seen; this is an upper bound.
		s.until(t, plaintext, 200)
		accept = append(accept, time.Since(readyAt))

		start := time.Now()
		patch := client.MergeFrom(k.DeepCopy())
		k.Spec.Disabled = true
		if err := env.Client.Patch(ctx, k, patch); err != nil {
			t.Fatal(err)
		}
		s.until(t, plaintext, 401)
		disable = append(disable, time.Since(start))
		if _, reason := s.verify(t, plaintext, "/v1/things/1"); reason != "disabled" {
			t.Errorf("reason %q, want disabled", reason)
		}

		patch = client.MergeFrom(k.DeepCopy())
		k.Spec.Disabled = false
		if err := env.Client.Patch(ctx, k, patch); err != nil {
			t.Fatal(err)
		}
		s.until(t, plaintext, 200)

		start = time.Now()
		if i%2 == 0 {
			patch = client.MergeFrom(k.DeepCopy())
			k.Spec.Revoked = true
			if err := env.Client.Patch(ctx, k, patch); err != nil {
				t.Fatal(err)
			}
			s.until(t, plaintext, 401)
			revoke = append(revoke, time.Since(start))
			if _, reason := s.verify(t, plaintext, "/v1/things/1"); reason != "revoked" {
				t.Errorf("reason %q, want revoked", reason)
			}
		} else {
			if err := env.Client.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			s.until(t, plaintext, 401)
			del = append(del, time.Since(start))
			if _, reason := s.verify(t, plaintext, "/v1/things/1"); reason != "unknown" {
				t.Errorf("reason %q, want unknown", reason)
			}
		}
	}
	t.Logf("accepted after Ready: max %v; refused after disable: p50 %v max %v; after revoke: p50 %v max %v; after delete: p50 %v max %v",
		percentile(accept, 1), percentile(disable, .5), percentile(disable, 1), percentile(revoke, .5), percentile(revoke, 1), percentile(del, .5), percentile(del, 1))
	for _, d := range append(append(append(accept, disable...), revoke...), del...) {
		if d > time.Second {
			t.Errorf("a change took %v to reach the verifier; the promise is a second", d)
		}
	}
}

// TestVerifierOutlivesTheAPIServer cuts the verifier off from the API
// server: it keeps answering from memory and stays ready; changes made
// meanwhile reach it once the API server is back.
func TestVerifierOutlivesTheAPIServer(t *testing.T) {
	env.Need(t)
	outage, cfg := env.NewOutage(t)
	s := startStackWith(t, time.Minute, cfg)
	s.setup(t)
	ctx := context.Background()
	good, goodKey, _ := s.issue(t, "good")
	bad, badKey, _ := s.issue(t, "bad")
	patch := client.MergeFrom(bad.DeepCopy())
	bad.Spec.Revoked = true
	if err := env.Client.Patch(ctx, bad, patch); err != nil {
		t.Fatal(err)
	}
	// Both keys as the verifier holds them before the cut: a 401 alone
	// could be "unknown", before the verifier saw the key at all.
	testenv.Eventually(t, 10*time.Second, func() error {
		if code, reason := s.verify(t, badKey, "/v1/things/1"); code != 401 || reason != "revoked" {
			return fmt.Errorf("the revoked key: %d %s", code, reason)
		}
		if code, reason := s.verify(t, goodKey, "/v1/things/1"); code != 200 {
			return fmt.Errorf("the valid key: %d %s", code, reason)
		}
		return nil
	})

	// Every hashed Secret the verifier has seen is at or before this
	// resource version.
	var seen corev1.SecretList
	if err := env.Client.List(ctx, &seen, client.InNamespace(s.ops)); err != nil {
		t.Fatal(err)
	}
	// Lists before the cut: one at start, or more if a watch started
	// after a compaction (every second here).
	listed := s.metric(t, `keyward_verifier_lists_total{resource="secrets"}`)
	outage.Cut()
	for range 20 {
		if code, _ := s.verify(t, goodKey, "/v1/things/1"); code != 200 {
			t.Fatalf("with the API server away, a valid key got %d", code)
		}
		if code, reason := s.verify(t, badKey, "/v1/things/1"); code != 401 || reason != "revoked" {
			t.Fatalf("with the API server away, a revoked key got %d %s", code, reason)
		}
		if code, reason := s.verify(t, goodKey, "/admin"); code != 403 || reason != "scope" {
			t.Fatalf("with the API server away, an uncovered path got %d %s", code, reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get("http://" + s.verifier.ProbeAddr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the verifier went unready while the API server was away: %v %v", err, resp)
	}
	resp.Body.Close()

	// Meanwhile: revoke the good key and issue a new one. The verifier
	// cannot know yet.
	patch = client.MergeFrom(good.DeepCopy())
	good.Spec.Revoked = true
	if err := env.Client.Patch(ctx, good, patch); err != nil {
		t.Fatal(err)
	}
	_, newKey, _ := s.issue(t, "meanwhile")
	// Wait until etcd has compacted past what the verifier saw (it compacts
	// every second here): a watch resuming from there is refused with 410
	// Gone, "too old resource version".
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		w, err := cs.CoreV1().Secrets(s.ops).Watch(ctx, metav1.ListOptions{ResourceVersion: seen.ResourceVersion})
		if err != nil {
			return err
		}
		defer w.Stop()
		select {
		case e := <-w.ResultChan():
			if err := apierrors.FromObject(e.Object); e.Type != watch.Error || !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
				return fmt.Errorf("a watch from resource version %s got %s, not 410 Gone yet", seen.ResourceVersion, e.Type)
			}
			return nil
		case <-time.After(time.Second):
			return fmt.Errorf("a watch from resource version %s got nothing, not 410 Gone yet", seen.ResourceVersion)
		}
	})
	if code, _ := s.verify(t, goodKey, "/v1/things/1"); code != 200 {
		t.Fatalf("cut off, the verifier still learned of the revocation (%d): the outage is not real", code)
	}
	if n := s.metric(t, `keyward_verifier_lists_total{resource="secrets"}`); n != listed {
		t.Fatalf("hashed Secrets listed %v times before the API server came back, want %v, as before the cut", n, listed)
	}

	if err := outage.Restore(); err != nil {
		t.Fatal(err)
	}
	// The reflectors retry with a backoff capped at 2 s (plus jitter).
	revoked := s.within(t, goodKey, 401, 60*time.Second)
	issued := s.within(t, newKey, 200, 60*time.Second)
	t.Logf("after the API server came back: revocation seen in %v, new key accepted %v later", revoked, issued)
	// The verifier learned of them by listing again: a watch from where it
	// was cannot resume. Whether its reflector tried the watch first, and
	// got 410 Gone, or listed straight away depends on how its watch broke.
	lists := s.metric(t, `keyward_verifier_lists_total{resource="secrets"}`)
	expired := s.metric(t, `keyward_verifier_watch_expired_total{resource="secrets"}`)
	t.Logf("hashed Secrets listed %v times, %v watches refused as expired", lists, expired)
	if lists <= listed {
		t.Fatalf("the verifier caught up without listing hashed Secrets again (%v lists, %v before the cut): it cannot have, from a compacted resource version", lists, listed)
	}
	if code, reason := s.verify(t, badKey, "/v1/things/1"); code != 401 || reason != "revoked" {
		t.Fatalf("after the relist, the key revoked before the outage got %d %s", code, reason)
	}
}

// metric reads one sample from the verifier's /metrics; 0 if absent.
func (s *stack) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.verifier.ProbeAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// TestLastUsedTime drives constant load at a key and counts the writes of
// status.lastUsedTime: the first use is recorded at once, then at most one
// write per interval.
func TestLastUsedTime(t *testing.T) {
	const interval = 2 * time.Second
	s := startStack(t, interval)
	s.setup(t)
	ctx := context.Background()
	k, plaintext, _ := s.issue(t, "busy")

	w, err := envWatch(ctx, s.ns, k.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	writes := make(chan time.Time, 100)
	go func() {
		defer close(writes) // once the watch is stopped
		var last *metav1.Time
		for ev := range w.ResultChan() {
			if ev.Type != watch.Modified {
				continue
			}
			o := ev.Object.(*keywardv1alpha1.APIKey)
			if o.Status.LastUsedTime != nil && (last == nil || !o.Status.LastUsedTime.Equal(last)) {
				last = o.Status.LastUsedTime
				writes <- last.Time
			}
		}
	}()

	start := time.Now()
	const load = 7 * time.Second
	requests := 0
	for time.Since(start) < load {
		if code, _ := s.verify(t, plaintext, "/v1/things/1"); code != 200 {
			t.Fatalf("status %d", code)
		}
		requests++
	}
	time.Sleep(500 * time.Millisecond)
	w.Stop()
	var times []time.Time
	for w := range writes {
		times = append(times, w)
	}
	t.Logf("%d requests over %v, %d lastUsedTime writes (interval %v): %v", requests, load, len(times), interval, times)
	if len(times) == 0 {
		t.Fatal("lastUsedTime was never written")
	}
	if first := times[0]; first.Before(start.Truncate(time.Second)) || first.After(start.Add(2*time.Second)) {
		t.Errorf("the first use at %v was recorded as %v", start, first)
	}
	if limit := int(load/interval) + 1; len(times) > limit {
		t.Errorf("%d writes in %v: more than one per %v", len(times), load, interval)
	}
	if len(times) < int(load/interval)-1 {
		t.Errorf("only %d writes in %v under constant load: lastUsedTime falls behind", len(times), load)
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < interval-time.Second {
			t.Errorf("two writes %v apart", gap)
		}
	}
}

func envWatch(ctx context.Context, ns, name string) (watch.Interface, error) {
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		return nil, err
	}
	return wc.Watch(ctx, &keywardv1alpha1.APIKeyList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": name})
}
