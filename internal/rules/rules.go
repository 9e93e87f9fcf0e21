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

// Package rules holds the admission and issuance rules of DESIGN §3 that the
// validating webhook and the controllers must decide alike, as pure
// functions of the objects: the webhook refuses at apply time, the
// controller enforces what raced past it, and both call the same function.
package rules

import (
	"fmt"
	"net/netip"
	"time"
	"unicode"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

// ExternalIDHolders returns the applications among siblings (the other
// Applications of a's KeyGroup) that hold a's non-empty externalID and are
// neither being deleted nor Rejected. An externalID is the customer's
// identity at the backends (X-Auth-External-ID): two applications of one
// group that could hold working keys must never share it. A Rejected one
// never holds a working key again, so its externalID is free for the new
// Application its message asks for.
func ExternalIDHolders(a *keywardv1alpha1.Application, siblings []keywardv1alpha1.Application) []*keywardv1alpha1.Application {
	if a.Spec.ExternalID == "" {
		return nil
	}
	var out []*keywardv1alpha1.Application
	for i := range siblings {
		o := &siblings[i]
		if o.UID != a.UID && o.Name != a.Name && o.Spec.ExternalID == a.Spec.ExternalID && o.DeletionTimestamp.IsZero() &&
			o.Status.Phase != keywardv1alpha1.ApplicationRejected {
			out = append(out, o)
		}
	}
	return out
}

// ApplicationCreatedBefore orders applications by creation time, then name:
// of two that raced to the same externalID, the later one loses.
func ApplicationCreatedBefore(a, b *keywardv1alpha1.Application) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// SourceRangesOutside returns the indexes of the key's allowedSourceRanges
// that do not lie within any of the group's. A group that sets none lets a
// key set any; an unparsable CIDR is outside (the CRD refuses those).
func SourceRangesOutside(key, group []keywardv1alpha1.CIDR) []int {
	if len(group) == 0 {
		return nil
	}
	var outer []netip.Prefix
	for _, c := range group {
		if p, err := netip.ParsePrefix(string(c)); err == nil {
			outer = append(outer, p.Masked())
		}
	}
	var out []int
	for i, c := range key {
		p, err := netip.ParsePrefix(string(c))
		if err != nil || !within(p.Masked(), outer) {
			out = append(out, i)
		}
	}
	return out
}

func within(p netip.Prefix, outer []netip.Prefix) bool {
	for _, o := range outer {
		if o.Addr().Is4() == p.Addr().Is4() && o.Bits() <= p.Bits() && o.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// Confirmation is what a group's deletionProtection asks of the deletion
// of something that holds keys.
type Confirmation struct {
	// Needed is true when the deletion needs keyward.dev/confirm-delete.
	Needed bool
	// Always is true when the group asks for every deletion (Always);
	// else LastUsed is the latest use within Window that calls for it.
	Always   bool
	LastUsed time.Time
	Window   time.Duration
}

// DeletionConfirmation decides whether deleting something that holds keys
// (an APIKey itself, its Application, or its KeyGroup) needs the
// keyward.dev/confirm-delete annotation under g's deletionProtection.
// lastUsed holds the last use of each key concerned (nil: never used);
// deleting something that holds no key never needs it.
func DeletionConfirmation(g *keywardv1alpha1.KeyGroup, lastUsed []*metav1.Time, now time.Time) Confirmation {
	if len(lastUsed) == 0 {
		return Confirmation{}
	}
	switch g.Spec.DeletionProtection.Confirm {
	case keywardv1alpha1.ConfirmNever:
		return Confirmation{}
	case keywardv1alpha1.ConfirmAlways:
		return Confirmation{Needed: true, Always: true}
	}
	c := Confirmation{Window: g.RecentUseWindow()}
	for _, t := range lastUsed {
		if t != nil && t.After(c.LastUsed) {
			c.LastUsed = t.Time
		}
	}
	c.Needed = !c.LastUsed.IsZero() && c.LastUsed.Add(c.Window).After(now)
	return c
}

// MaxRotateRequest is the longest keyward.dev/rotate value, in bytes:
// room for any timestamp, commit hash or ticket reference.
const MaxRotateRequest = 253

// RotateRequestProblem says what is wrong with a keyward.dev/rotate value,
// or "" if nothing is. The value handled is echoed in
// status.rotation.lastRotateRequest, which kubectl prints as it is: it
// must be short and hold no control character (a terminal escape, a line
// break).
func RotateRequestProblem(v string) string {
	if len(v) > MaxRotateRequest {
		return fmt.Sprintf("longer than %d bytes", MaxRotateRequest)
	}
	for _, r := range v {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return fmt.Sprintf("holds %q, which is not a printable character", r)
		}
	}
	return ""
}
