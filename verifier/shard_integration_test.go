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
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
	"github.com/keyward/keyward/verifier"
)

// TestShardedVerifier runs a verifier for one KeyGroup of two: it holds
// only that group's keys, answers for them, and knows nothing of the other
// group's, even when asked about that group.
func TestShardedVerifier(t *testing.T) {
	s := startStack(t, time.Minute)
	s.setup(t)
	ctx := context.Background()
	for _, o := range []client.Object{testgen.KeyGroup(s.ns, "others", testgen.WithLimits(10, 100)), testgen.Application(s.ns, "other-app", "others")} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	_, mine, _ := s.issue(t, "mine")
	if err := env.Client.Create(ctx, testgen.APIKey(s.ns, "theirs", "other-app")); err != nil {
		t.Fatal(err)
	}
	theirs := s.keyStatus(t, "theirs", func(k *keywardv1alpha1.APIKey) error {
		if !ready(k) {
			return fmt.Errorf("not Ready: %+v", k.Status)
		}
		return nil
	})
	theirKey := s.delivered(t, theirs)

	shard := testenv.StartVerifier(t, env.Config, verifier.Options{Namespace: s.ops, KeyGroups: []string{s.ns + "/things"}})
	testenv.Eventually(t, 20*time.Second, func() error {
		if !shard.Ready() {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	if n := shard.Store.Len(); n != 1 {
		t.Errorf("the shard holds %d keys, want its group's 1", n)
	}
	if n := s.verifier.Store.Len(); n != 2 {
		t.Errorf("the unsharded verifier holds %d keys, want 2", n)
	}
	ask := func(group, key string) (int, string) {
		sh := &stack{ns: s.ns, base: "http://" + shard.Addr}
		code, h, err := sh.askErrGroup(group, key)
		if err != nil {
			t.Fatal(err)
		}
		return code, h.Get("X-Auth-Reason")
	}
	if code, reason := ask("things", mine); code != 200 {
		t.Errorf("its own group's key: %d %s", code, reason)
	}
	if code, reason := ask("others", theirKey.Plaintext()); code != 401 || reason != "unknown" {
		t.Errorf("another group's key, asked about that group: %d %s, want 401 unknown", code, reason)
	}
	if code, reason := ask("things", theirKey.Plaintext()); code != 401 || reason != "unknown" {
		t.Errorf("another group's key: %d %s, want 401 unknown", code, reason)
	}
	// A key issued later in its group reaches the shard; one of the other
	// group's does not.
	_, later, _ := s.issue(t, "later")
	testenv.Eventually(t, 10*time.Second, func() error {
		if code, reason := ask("things", later); code != 200 {
			return fmt.Errorf("a new key of its group: %d %s", code, reason)
		}
		return nil
	})
	if n := shard.Store.Len(); n != 2 {
		t.Errorf("the shard holds %d keys, want its group's 2", n)
	}
}
