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
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testgen"
	"github.com/keyward/keyward/verifier"
)

// runC3 measures, one key at a time, APIKey created → the verifier answers
// 200 for its key, and APIKey deleted → the verifier answers 401.
func (b *bench) runC3(ctx context.Context) error {
	n := b.opts.c3Keys
	vctx, cancel := context.WithCancel(ctx)
	v, err := verifier.Start(vctx, b.cluster.cfg, verifier.Options{
		Namespace: ctrlOps, Listen: anyLoopback, ProbeAddr: anyLoopback, LastUsedInterval: time.Minute, Log: logr.Discard(),
	})
	if err != nil {
		cancel()
		return err
	}
	defer func() {
		cancel()
		_ = v.Wait()
	}()
	if _, err := waitHTTP("http://"+v.ProbeAddr+"/readyz", 10*time.Millisecond, time.Minute); err != nil {
		return err
	}
	d, err := watchDeliveries(ctx, b, c3NS)
	if err != nil {
		return err
	}
	defer d.w.Stop()
	probe := &verifyProbe{url: "http://" + v.Addr + "/v1/verify/" + c3NS + "/things", client: &http.Client{Timeout: 5 * time.Second}}

	logf("C3: %d keys, one at a time", n)
	profile := filepath.Join(b.dir, "c3-manager.cpu.pprof")
	stopProfile, err := cpuProfile(profile)
	if err != nil {
		return err
	}
	var accept, refuse []time.Duration
	for i := range n {
		a, r, err := b.c3Key(ctx, d, probe, fmt.Sprintf("lat-%03d", i))
		if err != nil {
			_ = stopProfile()
			return err
		}
		accept, refuse = append(accept, a), append(refuse, r)
	}
	_ = stopProfile()
	row := b.add(c3Data{n: n, accept: accept, refuse: refuse}.row(b.command("C3")))
	if row.Met != "met" {
		b.attachProfile(row, profile)
	}
	return nil
}

func (b *bench) c3Key(ctx context.Context, d *deliveries, probe *verifyProbe, name string) (accept, refuse time.Duration, err error) {
	ch := d.expect(name)
	start := time.Now()
	key := testgen.APIKey(c3NS, name, "acme")
	if err := b.cluster.client.Create(ctx, key); err != nil {
		return 0, 0, err
	}
	var plaintext string
	select {
	case plaintext = <-ch:
	case <-time.After(30 * time.Second):
		return 0, 0, fmt.Errorf("C3: no delivery Secret for APIKey %s after 30 s", name)
	}
	if err := probe.until(plaintext, http.StatusOK, 30*time.Second); err != nil {
		return 0, 0, fmt.Errorf("C3: APIKey %s: %w", name, err)
	}
	accept = time.Since(start)
	// The verifier has recorded the key's use, so deletion protection
	// (the group's default, RecentlyUsed) asks for the confirmation first.
	patch := client.MergeFrom(key.DeepCopy())
	metav1.SetMetaDataAnnotation(&key.ObjectMeta, keywardv1alpha1.AnnotationConfirmDelete, "acme")
	if err := b.cluster.client.Patch(ctx, key, patch); err != nil {
		return 0, 0, err
	}
	start = time.Now()
	if err := b.cluster.client.Delete(ctx, key); err != nil {
		return 0, 0, err
	}
	if err := probe.until(plaintext, http.StatusUnauthorized, 30*time.Second); err != nil {
		return 0, 0, fmt.Errorf("C3: deleted APIKey %s: %w", name, err)
	}
	return accept, time.Since(start), nil
}

// verifyProbe asks the verifier about a key as ingress-nginx would.
type verifyProbe struct {
	url    string
	client *http.Client
}

// until asks every millisecond until the verifier answers status.
func (p *verifyProbe) until(key string, status int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := 0
	for {
		req, err := http.NewRequest(http.MethodGet, p.url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("X-Original-Method", "GET")
		req.Header.Set("X-Original-URL", "https://api.example.com/v1/things/1")
		resp, err := p.client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == status {
			return nil
		}
		last = resp.StatusCode
		if time.Now().After(deadline) {
			return fmt.Errorf("the verifier answers %d, not %d, after %s", last, status, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// deliveries hands out plaintext keys from delivery Secrets as a watch sees
// them created.
type deliveries struct {
	w       watch.Interface
	mu      sync.Mutex
	waiting map[string]chan string
}

func watchDeliveries(ctx context.Context, b *bench, ns string) (*deliveries, error) {
	w, err := b.cluster.clientset.CoreV1().Secrets(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=keyward"})
	if err != nil {
		return nil, err
	}
	d := &deliveries{w: w, waiting: map[string]chan string{}}
	go func() {
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Secret)
			if !ok || ev.Type != watch.Added {
				continue
			}
			d.mu.Lock()
			if ch, ok := d.waiting[s.Labels[record.LabelAPIKey]]; ok {
				ch <- string(s.Data[record.DeliveryAPIKey])
				delete(d.waiting, s.Labels[record.LabelAPIKey])
			}
			d.mu.Unlock()
		}
	}()
	return d, nil
}

func (d *deliveries) expect(apiKey string) <-chan string {
	ch := make(chan string, 1)
	d.mu.Lock()
	d.waiting[apiKey] = ch
	d.mu.Unlock()
	return ch
}
