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

package testenv

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/verifier"
)

// StartManager runs keyward's manager (controllers, and webhooks when
// o.Webhooks is set) against the API server of cfg until the test ends, or
// until the returned stop is called, which waits for it to stop and
// reports an error it stopped with. It returns once the manager's caches
// have synced, and fails the test if they have not within a minute. Several managers run in one process:
// each gets its own o.Instance unless the test named one.
func StartManager(t testing.TB, cfg *rest.Config, o manager.Options) (stop func()) {
	t.Helper()
	if o.Instance == "" {
		o.Instance = NewInstance()
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := manager.New(ctx, cfg, o)
	if err != nil {
		cancel()
		t.Fatalf("building the manager: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	// Started: the caches made at setup (those the indexes and the book
	// read: KeyGroups, Applications, APIKeys, Secrets) have synced, and the
	// controllers start a moment later. A test that times how soon a change
	// takes effect then does not time the lists too.
	synced := make(chan bool, 1)
	go func() { synced <- mgr.GetCache().WaitForCacheSync(ctx) }()
	select {
	case ok := <-synced:
		if !ok && ctx.Err() == nil {
			t.Fatal("the manager's caches did not sync")
		}
	case err := <-done:
		done <- err // for stop
		t.Fatalf("the manager stopped as it started: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the manager's caches did not sync within a minute")
	}
	return stop
}

// StartVerifier runs a verifier against the API server of cfg until the
// test ends; it returns once the verifier listens (not yet ready: see
// Server.Ready).
func StartVerifier(t testing.TB, cfg *rest.Config, o verifier.Options) *verifier.Server {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.ProbeAddr == "" {
		o.ProbeAddr = "127.0.0.1:0"
	}
	if o.Log.GetSink() == nil {
		o.Log = logf.Log.WithName("verifier")
	}
	ctx, cancel := context.WithCancel(context.Background())
	v, err := verifier.Start(ctx, cfg, o)
	if err != nil {
		cancel()
		t.Fatalf("starting the verifier: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := v.Wait(); err != nil {
			t.Errorf("verifier: %v", err)
		}
	})
	return v
}

var instances atomic.Int64

// NewInstance returns a manager instance name no other manager of this
// process has (see manager.Options.Instance).
func NewInstance() string {
	return fmt.Sprintf("t%d", instances.Add(1))
}
