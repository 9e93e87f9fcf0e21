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

package rules

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/test/testgen"
)

func cidrs(s ...string) []keywardv1alpha1.CIDR {
	out := make([]keywardv1alpha1.CIDR, len(s))
	for i, c := range s {
		out[i] = keywardv1alpha1.CIDR(c)
	}
	return out
}

func TestSourceRangesOutside(t *testing.T) {
	group := cidrs("10.0.0.0/8", "2001:db8::/32")
	tests := []struct {
		name       string
		key, group []keywardv1alpha1.CIDR
		want       []int
	}{
		{name: "group sets none", key: cidrs("0.0.0.0/0"), group: nil},
		{name: "inside", key: cidrs("10.1.0.0/16", "10.0.0.0/8", "2001:db8:1::/48"), group: group},
		{name: "wider than the group's", key: cidrs("0.0.0.0/0", "10.0.0.0/7"), group: group, want: []int{0, 1}},
		{name: "beside it", key: cidrs("11.0.0.0/8", "192.168.1.1/32"), group: group, want: []int{0, 1}},
		{name: "IPv4-mapped IPv6 is not IPv4", key: cidrs("::ffff:10.0.0.0/104"), group: group, want: []int{0}},
		{name: "host bits set", key: cidrs("10.1.2.3/8"), group: group},
		{name: "not a CIDR", key: cidrs("ten"), group: group, want: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SourceRangesOutside(tt.key, tt.group); !slices.Equal(got, tt.want) {
				t.Errorf("SourceRangesOutside = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExternalIDHolders(t *testing.T) {
	a := testgen.Application("ns", "a", "g", testgen.WithExternalID("X"))
	a.UID = "a"
	b := testgen.Application("ns", "b", "g", testgen.WithExternalID("X"))
	b.UID = "b"
	c := testgen.Application("ns", "c", "g", testgen.WithExternalID("Y"))
	gone := testgen.Application("ns", "gone", "g", testgen.WithExternalID("X"))
	now := metav1.Now()
	gone.DeletionTimestamp = &now
	rejected := testgen.Application("ns", "rejected", "g", testgen.WithExternalID("X"))
	rejected.Status.Phase = keywardv1alpha1.ApplicationRejected
	siblings := []keywardv1alpha1.Application{*a, *b, *c, *gone, *rejected}
	if got := ExternalIDHolders(a, siblings); len(got) != 1 || got[0].Name != "b" {
		t.Errorf("holders of X besides a = %v, want [b]", got)
	}
	if got := ExternalIDHolders(testgen.Application("ns", "d", "g"), siblings); got != nil {
		t.Errorf("an empty externalID is held by %v", got)
	}
}

func TestApplicationAdmittedTo(t *testing.T) {
	group := testgen.KeyGroup("ns", "g")
	group.UID = "new"
	tests := []struct {
		name  string
		phase keywardv1alpha1.ApplicationPhase
		uid   string
		want  bool
	}{
		{name: "active in this group", phase: keywardv1alpha1.ApplicationActive, uid: "new", want: true},
		{name: "active in a deleted group of the name", phase: keywardv1alpha1.ApplicationActive, uid: "old"},
		{name: "active before the group was recorded", phase: keywardv1alpha1.ApplicationActive, want: true},
		{name: "pending", phase: keywardv1alpha1.ApplicationPending, uid: "new"},
		{name: "rejected", phase: keywardv1alpha1.ApplicationRejected, uid: "new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testgen.Application("ns", "a", "g")
			a.Status.Phase, a.Status.KeyGroupUID = tt.phase, types.UID(tt.uid)
			if got := ApplicationAdmittedTo(a, group); got != tt.want {
				t.Errorf("ApplicationAdmittedTo = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeletionConfirmation(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-d)); return &t }
	recently := testgen.KeyGroup("ns", "g", testgen.WithDeletionProtection(keywardv1alpha1.ConfirmRecentlyUsed, 72*time.Hour))
	always := testgen.KeyGroup("ns", "g", testgen.WithDeletionProtection(keywardv1alpha1.ConfirmAlways, 72*time.Hour))
	never := testgen.KeyGroup("ns", "g", testgen.WithDeletionProtection(keywardv1alpha1.ConfirmNever, 72*time.Hour))
	tests := []struct {
		name     string
		g        *keywardv1alpha1.KeyGroup
		lastUsed []*metav1.Time
		want     bool
	}{
		{"no keys", always, nil, false},
		{"always, an unused key", always, []*metav1.Time{nil}, true},
		{"never, a key used now", never, []*metav1.Time{at(0)}, false},
		{"recently used: one of them within the window", recently, []*metav1.Time{nil, at(100 * time.Hour), at(71 * time.Hour)}, true},
		{"recently used: all outside the window", recently, []*metav1.Time{nil, at(100 * time.Hour), at(72 * time.Hour)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DeletionConfirmation(tt.g, tt.lastUsed, now); got.Needed != tt.want {
				t.Errorf("Needed = %v (%+v), want %v", got.Needed, got, tt.want)
			}
		})
	}
}

// TestKeyEnd: when the key issued at a time stops working. expiresAt ends
// every key; under maxKeyLifetime a rotating key's each key ends that long
// after its issue, or after its own every + overlap when that is longer
// (a key admitted before the group set its maximum); without a maximum,
// or for a key that does not rotate, nothing but expiresAt ends it.
func TestKeyEnd(t *testing.T) {
	issued := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	rotating := func(every, overlap time.Duration, expires *time.Time) *keywardv1alpha1.APIKey {
		k := testgen.APIKey("ns", "k", "acme")
		if every > 0 {
			k.Spec.Rotation = &keywardv1alpha1.APIKeyRotation{Every: metav1.Duration{Duration: every}, Overlap: &metav1.Duration{Duration: overlap}}
		}
		if expires != nil {
			k.Spec.ExpiresAt = &metav1.Time{Time: *expires}
		}
		return k
	}
	limited := testgen.KeyGroup("ns", "things", testgen.WithMaxKeyLifetime(100*time.Hour))
	free := testgen.KeyGroup("ns", "things")
	soon := issued.Add(50 * time.Hour)
	late := issued.Add(500 * time.Hour)
	for name, tt := range map[string]struct {
		k    *keywardv1alpha1.APIKey
		g    *keywardv1alpha1.KeyGroup
		want time.Time
	}{
		"rotating, under a maximum":                   {rotating(48*time.Hour, 24*time.Hour, nil), limited, issued.Add(100 * time.Hour)},
		"rotating, expiresAt before the maximum":      {rotating(48*time.Hour, 24*time.Hour, &soon), limited, soon},
		"rotating, expiresAt after the maximum":       {rotating(48*time.Hour, 24*time.Hour, &late), limited, issued.Add(100 * time.Hour)},
		"rotating, admitted before a shorter maximum": {rotating(96*time.Hour, 24*time.Hour, nil), limited, issued.Add(120 * time.Hour)},
		"rotating, no maximum":                        {rotating(48*time.Hour, 24*time.Hour, nil), free, time.Time{}},
		"rotating, no maximum, expiresAt":             {rotating(48*time.Hour, 24*time.Hour, &late), free, late},
		"not rotating, under a maximum":               {rotating(0, 0, &soon), limited, soon},
		"not rotating, under a maximum, no expiresAt": {rotating(0, 0, nil), limited, time.Time{}},
		"rotating, its KeyGroup gone":                 {rotating(48*time.Hour, 24*time.Hour, nil), nil, time.Time{}},
	} {
		if got := KeyEnd(tt.k, tt.g, issued); !got.Equal(tt.want) {
			t.Errorf("%s: %v, want %v", name, got, tt.want)
		}
	}
}

// TestRotateRequestProblem: a keyward.dev/rotate value status can echo is
// short and printable; anything a terminal would act on is refused.
func TestRotateRequestProblem(t *testing.T) {
	for _, tt := range []struct {
		value string
		ok    bool
	}{
		{"2026-11-30T12:00:00Z", true},
		{"release 4.2 — ticket OPS-17", true},
		{strings.Repeat("a", MaxRotateRequest), true},
		{strings.Repeat("a", MaxRotateRequest+1), false},
		{"\x1b[31mred", false},
		{"a\nb", false},
		{"a\rb", false},
		{"tab\there", false},
		{"bell\a", false},
		{"\u202eevil", false}, // right-to-left override
		{"bad\xffutf8", false},
	} {
		if got := RotateRequestProblem(tt.value); (got == "") != tt.ok {
			t.Errorf("RotateRequestProblem(%q) = %q, want ok %v", tt.value, got, tt.ok)
		}
	}
}
