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

package controllers

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testgen"
)

// The controller's decisions as table tests: no control plane, the same
// functions Reconcile calls.

func TestNearLimit(t *testing.T) {
	for _, tt := range []struct{ limit, want int }{
		{1, 1}, {5, 1}, {10, 1}, {19, 1}, {20, 2}, {55, 5}, {100, 10}, {1000, 10},
	} {
		if got := nearLimit(tt.limit); got != tt.want {
			t.Errorf("nearLimit(%d) = %d, want %d", tt.limit, got, tt.want)
		}
	}
}

func TestCountSlots(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	group := testgen.KeyGroup("ns", "things")
	key := func(name string, uid types.UID, created time.Duration, opts ...testgen.APIKeyOption) keywardv1alpha1.APIKey {
		k := testgen.APIKey("ns", name, "acme", opts...)
		k.UID = uid
		k.CreationTimestamp = metav1.NewTime(now.Add(created))
		return *k
	}
	self := key("self", "self", 0)
	revoked := func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true }
	rejected := func(k *keywardv1alpha1.APIKey) { k.Status.Phase = keywardv1alpha1.APIKeyRejected }
	tests := []struct {
		name            string
		siblings        []keywardv1alpha1.APIKey
		states          map[string]record.State
		reserved        []types.UID
		active, waiting int
	}{
		{name: "alone", siblings: []keywardv1alpha1.APIKey{self}},
		{
			name:     "minted siblings count by their hashed Secret's state",
			siblings: []keywardv1alpha1.APIKey{self, key("a", "a", -time.Hour), key("d", "d", -time.Hour), key("r", "r", -time.Hour), key("x", "x", -time.Hour)},
			states:   map[string]record.State{"a": record.StateActive, "d": record.StateDisabled, "r": record.StateRevoked, "x": record.StateExpired},
			active:   2,
		},
		{
			name:     "revoked in spec no longer counts, whatever its record says yet",
			siblings: []keywardv1alpha1.APIKey{self, key("a", "a", -time.Hour, revoked)},
			states:   map[string]record.State{"a": record.StateActive},
		},
		{
			name:     "older keys not issued yet wait ahead; newer ones and rejected ones do not",
			siblings: []keywardv1alpha1.APIKey{self, key("older", "o", -time.Minute), key("newer", "n", time.Minute), key("gone", "g", -time.Minute, rejected), key("bad", "b", -time.Minute, testgen.WithScopes("nope"))},
			waiting:  1,
		},
		{
			name:     "a slot counts from its hashed Secret even when the cache does not show its APIKey yet",
			siblings: []keywardv1alpha1.APIKey{self},
			states:   map[string]record.State{"minted-elsewhere": record.StateActive, "self": record.StateActive},
			active:   1,
		},
		{
			name:     "reservations wait ahead, and are not counted twice",
			siblings: []keywardv1alpha1.APIKey{self, key("minting", "m", -time.Minute)},
			reserved: []types.UID{"m", "other", "self"},
			waiting:  2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &apiKeyScope{key: &self, group: group, now: now}
			reserved := map[types.UID]struct{}{}
			for _, u := range tt.reserved {
				reserved[u] = struct{}{}
			}
			active, waiting := (&APIKeyReconciler{}).countSlots(s, tt.siblings, tt.states, reserved)
			if active != tt.active || waiting != tt.waiting {
				t.Errorf("countSlots = %d active, %d waiting; want %d, %d", active, waiting, tt.active, tt.waiting)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	k, err := keys.Generate("kw")
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.Generate("iot")
	if err != nil {
		t.Fatal(err)
	}
	p := k.Plaintext()
	b64 := base64.StdEncoding.EncodeToString([]byte(p))
	for _, tt := range []struct {
		name, in string
	}{
		{"the plaintext", "admission webhook denied: data.api-key=" + p},
		{"the plaintext in base64", `{"data":{"api-key":"` + b64 + `"}}`},
		{"another key-shaped string", "policy quoted " + other.Plaintext()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := redactPlaintext(errors.New(tt.in), p).Error()
			if strings.Contains(got, p) || strings.Contains(got, b64) || strings.Contains(got, other.Plaintext()) {
				t.Errorf("not redacted: %q", got)
			}
			if !strings.Contains(got, "[redacted key]") {
				t.Errorf("no redaction marker: %q", got)
			}
		})
	}
	plain := errors.New("creating delivery Secret ns/k-key: forbidden")
	if got := redactPlaintext(plain, p); got != plain {
		t.Errorf("an error without key material was rewritten: %v", got)
	}
	if redactPlaintext(nil, p) != nil {
		t.Error("nil error became non-nil")
	}
}
