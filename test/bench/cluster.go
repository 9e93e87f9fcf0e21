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
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
)

// cluster is the real control plane the tests use (kube-apiserver and etcd
// from bin/k8s), started once for the whole run.
type cluster struct {
	env *testenv.Env
	// cfg has client-side rate limiting off (QPS -1), as ctrl.GetConfig
	// gives the manager and the verifier in a cluster.
	cfg        *rest.Config
	client     client.WithWatch
	clientset  kubernetes.Interface // protobuf, for Secrets in bulk
	kubeconfig string
	// managerCfg is the manager's own connection (managerConfig), once
	// made.
	managerCfg *rest.Config
}

// startCluster starts the control plane with keyward's admission webhooks
// registered (config/webhook), served by the manager the run starts. No
// kube-controller-manager runs: what is measured is keyward, the API
// server and etcd, as in the runs before it joined the control plane.
func startCluster(root, dir string) (*cluster, error) {
	return startClusterWith(testenv.Options{Webhooks: &envtest.WebhookInstallOptions{
		Paths: []string{filepath.Join(root, "config", "webhook", "manifests.yaml")},
	}, NoControllerManager: true}, filepath.Join(dir, "kubeconfig"))
}

// startClusterWith starts a control plane with opts and writes its
// kubeconfig to kc.
func startClusterWith(opts testenv.Options, kc string) (*cluster, error) {
	env, err := testenv.Start(opts)
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, 0
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(pcfg)
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	if err := env.WriteKubeconfig(kc); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &cluster{env: env, cfg: cfg, client: c, clientset: cs, kubeconfig: kc}, nil
}

func (c *cluster) stop() {
	if err := c.env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: stopping the control plane:", err)
	}
	_ = os.Remove(c.kubeconfig)
}

func (c *cluster) namespace(ctx context.Context, name string) error {
	return c.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

// hashedKeys describes hashed Secrets created for the benchmark.
type hashedKeys struct {
	// Valid is the plaintext of one of them, and ValidID its key ID.
	Valid, ValidID string
	Created        int
	// ThroughAPI were created through the API server in APITook, using
	// APICPU; the rest were put into etcd in EtcdTook.
	ThroughAPI int
	APITook    time.Duration
	APICPU     map[string]time.Duration
	EtcdTook   time.Duration
}

// hashedSecret builds the hashed Secret of key i of tenant/group in the
// record format the manager writes: 100 applications, keys spread evenly.
func hashedSecret(ops, tenant, group string, i int, k keys.Key) *corev1.Secret {
	app := fmt.Sprintf("app-%03d", i%100)
	uid := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	rec := record.Record{
		Digest: k.Digest(), KeyID: k.ID(), Namespace: tenant, KeyGroup: group, Application: app,
		APIKey: fmt.Sprintf("key-%06d", i), ExternalID: "ext-" + app, Scopes: []string{"read"}, State: record.StateActive,
	}
	labels := rec.Labels(uid)
	labels["app.kubernetes.io/managed-by"] = "keyward"
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ops, Name: record.SecretName(uid), Labels: labels,
			Annotations: map[string]string{"keyward.dev/apikey": tenant + "/" + rec.APIKey},
		},
		Type: corev1.SecretTypeOpaque,
		Data: rec.SecretData(),
	}
}

// loadHashedSecrets makes n hashed Secrets exist in ops: the first viaAPI
// created through the API server (48 at a time, protobuf), the rest put
// into etcd (see etcd.go). One of them, in the middle, is the valid key.
func (c *cluster) loadHashedSecrets(ctx context.Context, ops, tenant, group string, n, viaAPI int) (hashedKeys, error) {
	viaAPI = max(1, min(viaAPI, n))
	out := hashedKeys{ThroughAPI: viaAPI}
	valid := n / 2
	cpu := processCPU()
	start := time.Now()
	if err := c.createHashedSecrets(ctx, ops, tenant, group, viaAPI, 48, valid, &out); err != nil {
		return out, err
	}
	out.APITook, out.APICPU = time.Since(start), cpuDelta(cpu, processCPU())
	logf("%d hashed Secrets created through the API server in %s (%.0f/s); CPU: %s",
		viaAPI, out.APITook.Round(time.Millisecond), float64(viaAPI)/out.APITook.Seconds(), fmtCPU(out.APICPU))
	if n > viaAPI {
		start = time.Now()
		model := hashedSecret(ops, tenant, group, 0, keys.Key{})
		if err := c.putHashedSecrets(ctx, model, ops, tenant, group, viaAPI, n, valid, &out); err != nil {
			return out, err
		}
		out.EtcdTook = time.Since(start)
		logf("%d more put into etcd in %s", n-viaAPI, out.EtcdTook.Round(time.Millisecond))
	}
	if err := c.waitListed(ctx, ops, n, time.Minute); err != nil {
		return out, err
	}
	out.Created = n
	return out, nil
}

// waitListed waits until the API server lists n Secrets in ops, for at most
// timeout.
func (c *cluster) waitListed(ctx context.Context, ops string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		list, err := c.clientset.CoreV1().Secrets(ops).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return err
		}
		seen := len(list.Items)
		if r := list.RemainingItemCount; r != nil {
			seen += int(*r)
		}
		if seen == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the API server lists %d Secrets in %s, want %d", seen, ops, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// secretsCache selects kube-apiserver's watch cache of Secrets in its
// metrics.
var secretsCache = map[string]string{"group": "", "resource": "secrets"}

// waitWatchCache waits until kube-apiserver's watch cache of Secrets has
// reached etcd revision rev. A consistent list (resourceVersion unset) is
// served from that cache only when it catches up within a few seconds;
// otherwise the API server reads the whole collection from etcd in one
// range and decodes all of it before answering. After keys are put into
// etcd behind its back faster than it takes them in, that is what a
// verifier started at once would measure.
func (c *cluster) waitWatchCache(ctx context.Context, rev int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		text, err := c.apiserverMetrics(ctx)
		if err != nil {
			return err
		}
		at := sumSamples(text, "apiserver_watch_cache_resource_version", secretsCache)
		if int64(at) >= rev {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the API server's watch cache of Secrets is at revision %.0f after %s, want %d", at, timeout, rev)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitQuiet waits until the process pid has used less than a tenth of a
// core over two seconds: kube-apiserver, after keys were put into etcd
// behind its back, is still decoding them into its own informers (its
// service-account token lookup watches every Secret) after its watch
// cache has caught up. It returns how long it waited.
func waitQuiet(pid int, timeout time.Duration) (time.Duration, error) {
	const window = 2 * time.Second
	start := time.Now()
	for {
		before := pidCPU(pid)
		time.Sleep(window)
		used := pidCPU(pid) - before
		if used < window/10 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("process %d still used %s of CPU in %s after %s", pid, used, window, timeout)
		}
	}
}

// cacheFallbacks is how many consistent lists of Secrets kube-apiserver
// served from etcd because its watch cache had not caught up.
func (c *cluster) cacheFallbacks(ctx context.Context) float64 {
	text, err := c.apiserverMetrics(ctx)
	if err != nil {
		return -1
	}
	want := map[string]string{"fallback": "true"}
	maps.Copy(want, secretsCache)
	return sumSamples(text, "apiserver_watch_cache_consistent_read_total", want)
}

// createHashedSecrets creates hashed Secrets [0, n) through the API server
// with workers concurrent creates.
func (c *cluster) createHashedSecrets(ctx context.Context, ops, tenant, group string, n, workers, valid int, out *hashedKeys) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
		mu      sync.Mutex
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				k, err := keys.Generate("kt")
				if err == nil {
					_, err = c.clientset.CoreV1().Secrets(ops).Create(ctx, hashedSecret(ops, tenant, group, i, k), metav1.CreateOptions{})
				}
				if err != nil {
					errOnce.Do(func() { first = err; cancel() })
					return
				}
				if i == valid {
					mu.Lock()
					out.Valid, out.ValidID = k.Plaintext(), k.ID()
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("creating hashed Secrets: %w", first)
	}
	return nil
}

// pidCPU returns the CPU time (user and system, all threads) a process has
// used so far; 0 for pid 0 or when unknown.
func pidCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")) // #nosec G304 -- /proc
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	// After the command: state ppid pgrp ... utime (12th) stime (13th).
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// processCPU returns the CPU time (user+system) used so far by this process
// and each of its child processes (kube-apiserver, etcd, nginx, ...), by
// command name.
func processCPU() map[string]time.Duration {
	out := map[string]time.Duration{"bench (manager, clients)": pidCPU(os.Getpid())}
	for pid, name := range children() {
		out[name] += pidCPU(pid)
	}
	return out
}

// children yields the pid and command name of each child process of this
// one, from /proc.
func children() func(yield func(int, string) bool) {
	return func(yield func(int, string) bool) {
		self := strconv.Itoa(os.Getpid())
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")) // #nosec G304 -- /proc
			if err != nil {
				continue
			}
			st := string(b)
			open, end := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
			if open < 0 || end < open {
				continue
			}
			if f := strings.Fields(st[end+1:]); len(f) >= 2 && f[1] == self && !yield(pid, st[open+1:end]) {
				return
			}
		}
	}
}

// cpuDelta is after - before, for the processes present in both.
func cpuDelta(before, after map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, v := range after {
		if b, ok := before[k]; ok {
			out[k] = v - b
		}
	}
	return out
}

func fmtCPU(m map[string]time.Duration) string {
	var parts []string
	for _, name := range []string{"bench (manager, clients)", "kube-apiserver", "etcd"} {
		if d, ok := m[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f s", name, d.Seconds()))
		}
	}
	return strings.Join(parts, ", ")
}

// pidSched returns, summed over a process's threads, the time they have
// spent runnable but waiting for a core, and how many times they ran
// (/proc/<pid>/task/*/schedstat: run time, wait time, timeslices).
func pidSched(pid int) (wait time.Duration, slices int64) {
	if pid <= 0 {
		return 0, 0
	}
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "schedstat"))
	if err != nil {
		return 0, 0
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t) // #nosec G304 -- /proc
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 3 {
			continue
		}
		w, _ := strconv.ParseInt(f[1], 10, 64)
		n, _ := strconv.ParseInt(f[2], 10, 64)
		wait += time.Duration(w)
		slices += n
	}
	return wait, slices
}
