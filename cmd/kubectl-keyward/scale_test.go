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
	"encoding/json"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testgen"
)

// TestIdentifyAmong10000 finds one key among 10,000 hashed Secrets, the last
// one listed (Secrets list in name order), so that identify reads them all,
// and reports how long it took: a figure, not an assertion.
func TestIdentifyAmong10000(t *testing.T) {
	env.Need(t)
	const n = 10000
	ops, ns := env.Namespace(t), env.Namespace(t)
	ctx := context.Background()

	// The hashed Secrets, written through the API server as the manager
	// writes them; the last one is the key to find.
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Pointer[error]
		target keys.Key
	)
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n && failed.Load() == nil; i = int(next.Add(1) - 1) {
				k, err := keys.Generate("kt")
				if err == nil {
					err = env.Client.Create(ctx, hashedRecord(ops, ns, i, k))
				}
				if err != nil {
					failed.Store(&err)
					return
				}
				if i == n-1 {
					target = k
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("creating hashed Secrets: %v", *err)
	}
	t.Logf("%d hashed Secrets created in %s", n, time.Since(start).Round(time.Millisecond))

	// Its APIKey, under the UID its record names.
	key := testgen.APIKey(ns, "key-09999", "app-099")
	create(t, key)
	setStatus(t, key, keywardv1alpha1.APIKeyStatus{Phase: keywardv1alpha1.APIKeyActive, KeyID: target.ID()})
	pointAt(t, ops, n-1, key)

	p := newPlugin(t)
	for run := 1; run <= 3; run++ {
		start, cpu := time.Now(), processCPU(t)
		r := p.ok(target.Plaintext(), "identify", "--operator-namespace", ops, "-o", "json")
		took, used := time.Since(start), processCPU(t)-cpu
		var id identity
		if err := json.Unmarshal([]byte(r.out), &id); err != nil {
			t.Fatal(err)
		}
		if id.APIKey != "key-09999" || id.Namespace != ns || id.KeyID != target.ID() || id.Phase != string(keywardv1alpha1.APIKeyActive) {
			t.Fatalf("identify found %+v", id)
		}
		t.Logf("identify among %d hashed Secrets, run %d (a new client each run, as the command starts): %s, of which %s CPU in the command (the API server's apart)",
			n, run, took.Round(time.Millisecond), used.Round(time.Millisecond))
	}
}

// processCPU is the CPU time this process has used: with the machine
// shared, it says what identify itself costs, whatever the wall clock.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pointAt makes the hashed record of key i name the APIKey's real UID,
// which only the API server chooses, so that identify resolves it.
func pointAt(t *testing.T, ops string, i int, key *keywardv1alpha1.APIKey) {
	t.Helper()
	ctx := context.Background()
	var s corev1.Secret
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ops, Name: record.SecretName(recordUID(i))}, &s); err != nil {
		t.Fatal(err)
	}
	base := s.DeepCopy()
	s.Labels[record.LabelAPIKeyUID] = string(key.UID)
	if err := env.Client.Patch(ctx, &s, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}
