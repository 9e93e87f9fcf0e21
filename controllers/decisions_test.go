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
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/index"
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
			siblings := map[types.UID]*keywardv1alpha1.APIKey{}
			for i := range tt.siblings {
				siblings[tt.siblings[i].UID] = &tt.siblings[i]
			}
			states := map[types.UID]record.State{}
			for uid, st := range tt.states {
				states[types.UID(uid)] = st
			}
			active, waiting := (&APIKeyReconciler{}).countSlots(s, siblings, states, reserved)
			if active != tt.active || waiting != tt.waiting {
				t.Errorf("countSlots = %d active, %d waiting; want %d, %d", active, waiting, tt.active, tt.waiting)
			}
		})
	}
}

// TestCountSlotsBookedAgreesWithCountSlots feeds a book random keys and
// hashed Secrets, changes and deletes some, and requires the book's count
// (what a decision far from the limit uses) to equal the full one
// (countSlots over every key and hashed Secret) for any key, reservations
// and time.
func TestCountSlotsBookedAgreesWithCountSlots(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2)) // #nosec G404 -- test data
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	group := testgen.KeyGroup("ns", "things")
	phases := []keywardv1alpha1.APIKeyPhase{"", keywardv1alpha1.APIKeyPending, keywardv1alpha1.APIKeyActive, keywardv1alpha1.APIKeyDisabled,
		keywardv1alpha1.APIKeyRevoked, keywardv1alpha1.APIKeyExpired, keywardv1alpha1.APIKeyRejected}
	states := []record.State{record.StateActive, record.StateDisabled, record.StateRevoked, record.StateExpired, record.StateRejected}
	randomKey := func(i int) *keywardv1alpha1.APIKey {
		var opts []testgen.APIKeyOption
		if rng.IntN(8) == 0 {
			opts = append(opts, testgen.WithScopes("nope"))
		}
		k := testgen.APIKey("ns", fmt.Sprintf("key-%02d", rng.IntN(60)), "acme", opts...)
		k.UID = types.UID(fmt.Sprintf("u%d", i))
		k.CreationTimestamp = metav1.NewTime(now.Add(time.Duration(rng.IntN(5)-4) * time.Minute)) // ties on purpose
		k.Status.Phase = phases[rng.IntN(len(phases))]
		k.Spec.Revoked = rng.IntN(8) == 0
		if rng.IntN(8) == 0 {
			k.DeletionTimestamp = &metav1.Time{Time: now}
		}
		if rng.IntN(3) == 0 {
			k.Spec.ExpiresAt = &metav1.Time{Time: now.Add(time.Duration(rng.IntN(5)-2) * time.Minute)}
		}
		return k
	}
	hashed := func(uid types.UID) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "keyward-system", Name: record.SecretName(string(uid)), Labels: map[string]string{
			record.LabelHashedKey: "true", record.LabelNamespace: "ns", record.LabelApplication: "acme",
			record.LabelAPIKeyUID: string(uid), record.LabelState: string(states[rng.IntN(len(states))]),
		}}}
	}
	for round := range 300 {
		book := index.NewBook("keyward-system")
		keys := map[types.UID]*keywardv1alpha1.APIKey{}
		secrets := map[types.UID]*corev1.Secret{}
		n := rng.IntN(40)
		for i := range n + 5 {
			uid := types.UID(fmt.Sprintf("u%d", i))
			if i < n {
				keys[uid] = randomKey(i)
				book.OnAdd(keys[uid], false)
			}
			if rng.IntN(5) < 3 {
				secrets[uid] = hashed(uid)
				book.OnAdd(secrets[uid], false)
			}
		}
		for range rng.IntN(20) {
			uid := types.UID(fmt.Sprintf("u%d", rng.IntN(n+5)))
			switch old, ok := keys[uid]; {
			case ok && rng.IntN(3) == 0:
				book.OnDelete(old)
				delete(keys, uid)
			case ok:
				k := randomKey(0)
				k.UID, k.Name, k.CreationTimestamp = old.UID, old.Name, old.CreationTimestamp
				if rng.IntN(4) == 0 {
					book.OnAdd(k, false)
				} else {
					book.OnUpdate(old, k)
				}
				keys[uid] = k
			}
			switch old, ok := secrets[uid]; {
			case ok && rng.IntN(3) == 0:
				book.OnDelete(toolscache.DeletedFinalStateUnknown{Obj: old})
				delete(secrets, uid)
			case ok && rng.IntN(4) == 0: // an informer's replay: added again
				secrets[uid] = hashed(uid)
				book.OnAdd(secrets[uid], false)
			case ok:
				secrets[uid] = hashed(uid)
				book.OnUpdate(old, secrets[uid])
			default:
				secrets[uid] = hashed(uid)
				book.OnAdd(secrets[uid], false)
			}
		}
		self := randomKey(n + 100)
		if len(keys) > 0 && rng.IntN(4) > 0 {
			self = keys[types.UID(fmt.Sprintf("u%d", rng.IntN(n)))]
		}
		if self == nil {
			continue
		}
		reserved := map[types.UID]struct{}{}
		for range rng.IntN(4) {
			reserved[types.UID(fmt.Sprintf("u%d", rng.IntN(n+8)))] = struct{}{}
		}
		s := &apiKeyScope{key: self, group: group, now: now}
		// What the book should hold, from what it was fed.
		states := map[types.UID]record.State{}
		for uid, sec := range secrets {
			states[uid] = record.State(sec.Labels[record.LabelState])
		}
		wantActive, wantWaiting := (&APIKeyReconciler{}).countSlots(s, keys, states, reserved)
		book.Read("ns", "acme", func(sib index.Siblings) {
			issued := 0
			for _, k := range keys {
				if k.Status.Phase == keywardv1alpha1.APIKeyActive || k.Status.Phase == keywardv1alpha1.APIKeyDisabled {
					issued++
				}
			}
			if sib.ActiveOrDisabled != issued {
				t.Errorf("round %d: the book counts %d Active or Disabled keys, want %d", round, sib.ActiveOrDisabled, issued)
			}
			active, waiting := countSlotsBooked(s, sib, reserved)
			if active != wantActive || waiting != wantWaiting {
				t.Errorf("round %d: countSlotsBooked = %d active, %d waiting; countSlots over every key = %d, %d", round, active, waiting, wantActive, wantWaiting)
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
		// A rotation writes the whole Secret: a policy quoting it in
		// base64 shows the current key beside the successor redacted.
		{"another key in base64", "denied request: refused: api-key=" + base64.StdEncoding.EncodeToString([]byte(other.Plaintext())) + ",api-key-next=x"},
		{"another key in base64 without padding", "data:" + base64.RawStdEncoding.EncodeToString([]byte(other.Plaintext()))},
		{"another key in base64, inside other data", `"` + base64.StdEncoding.EncodeToString([]byte("x-"+other.Plaintext()+"\n")) + `"`},
		{"another key in base64 run on from text", "value" + base64.StdEncoding.EncodeToString([]byte(other.Plaintext()))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := redactPlaintext(errors.New(tt.in), p).Error()
			if strings.Contains(got, p) || strings.Contains(got, b64) || strings.Contains(got, other.Plaintext()) || leaksInBase64(got, other.Plaintext()) {
				t.Errorf("not redacted: %q", got)
			}
			if !strings.Contains(got, "[redacted key]") {
				t.Errorf("no redaction marker: %q", got)
			}
		})
	}
	plain := errors.New("creating delivery Secret ns/k-key: forbidden")
	long := errors.New("a resource version, a UID and a hash are no keys: " + strings.Repeat("QUJD", 20))
	if got := redactPlaintext(long, p); got != long {
		t.Errorf("base64 without a key was rewritten: %v", got)
	}
	if got := redactPlaintext(plain, p); got != plain {
		t.Errorf("an error without key material was rewritten: %v", got)
	}
	if redactPlaintext(nil, p) != nil {
		t.Error("nil error became non-nil")
	}
}

// leaksInBase64 reports whether s holds the base64 of key, at any
// alignment.
func leaksInBase64(s, key string) bool {
	for _, pre := range []string{"", "x", "xy"} {
		enc := base64.StdEncoding.EncodeToString([]byte(pre + key))
		// The part of enc that depends on the key alone.
		if strings.Contains(s, enc[(len(pre)+2)/3*4:len(enc)-4]) {
			return true
		}
	}
	return false
}
