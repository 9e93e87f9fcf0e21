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
	"time"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/match"
)

// MissingScopes returns, in order, the key's scopes that its group does not
// define. Admission refuses such a key; the controller rejects one whose
// scope vanished from the group later.
func MissingScopes(k *keywardv1alpha1.APIKey, g *keywardv1alpha1.KeyGroup) []string {
	var missing []string
	for _, sc := range k.Spec.Scopes {
		if g.Scope(string(sc)) == nil {
			missing = append(missing, string(sc))
		}
	}
	return missing
}

// Lifetime is how a key's expiresAt stands against its group's
// maxKeyLifetime.
type Lifetime struct {
	// Max is the group's maxKeyLifetime; zero when it sets none.
	Max time.Duration
	// Latest is the latest expiresAt allowed: Max after the key's creation.
	Latest time.Time
	// Unset: the group sets a maximum and the key has neither expiresAt
	// nor rotation. TooLate: the key's expiresAt is after Latest.
	Unset, TooLate bool
	// Rotated is a rotating key's every + overlap: how long each of its
	// keys works at most. RotationTooLong: that is more than Max.
	Rotated         time.Duration
	RotationTooLong bool
}

// OK reports whether the key keeps within its group's maxKeyLifetime.
func (l Lifetime) OK() bool { return !l.Unset && !l.TooLate && !l.RotationTooLong }

// KeyLifetime judges k's expiresAt against g's maxKeyLifetime, counted from
// the key's creation (from now while it is being created and has no
// creationTimestamp yet), and, for a key with spec.rotation, its every +
// overlap: a rotating key may omit expiresAt.
func KeyLifetime(k *keywardv1alpha1.APIKey, g *keywardv1alpha1.KeyGroup, now time.Time) Lifetime {
	if g.Spec.MaxKeyLifetime == nil {
		return Lifetime{}
	}
	created := k.CreationTimestamp.Time
	if created.IsZero() {
		created = now
	}
	l := Lifetime{Max: g.Spec.MaxKeyLifetime.Duration}
	l.Latest = created.Add(l.Max)
	if k.Spec.Rotation != nil {
		// Each key a rotation mints works for every, then overlap more:
		// that, not the APIKey's age, is what the maximum bounds.
		l.Rotated = rotationTerm(k)
		l.RotationTooLong = l.Rotated > l.Max
	}
	switch {
	case k.Spec.ExpiresAt == nil:
		l.Unset = k.Spec.Rotation == nil
	case k.Spec.ExpiresAt.Sub(created) > l.Max:
		l.TooLate = true
	}
	return l
}

// KeyEnd is when the key of k issued at issuedAt stops working, zero for
// never: the APIKey's expiresAt, and, for a rotating key under a group's
// maxKeyLifetime, that maximum after it was issued if that is earlier. A
// rotation replaces the key long before (every + overlap fits within the
// maximum); one held (a Secret in the way, a grant revoked, the manager
// down) must not leave the key working past the maximum. A key admitted
// before the group set its maximum, whose every + overlap is longer, gets
// that term instead: the maximum binds keys created after it.
func KeyEnd(k *keywardv1alpha1.APIKey, g *keywardv1alpha1.KeyGroup, issuedAt time.Time) time.Time {
	var end time.Time
	if k.Spec.ExpiresAt != nil {
		end = k.Spec.ExpiresAt.UTC().Truncate(time.Second)
	}
	if k.Spec.Rotation != nil && g != nil && g.Spec.MaxKeyLifetime != nil && !issuedAt.IsZero() {
		term := max(g.Spec.MaxKeyLifetime.Duration, rotationTerm(k))
		if bound := issuedAt.Add(term).UTC().Truncate(time.Second); end.IsZero() || bound.Before(end) {
			end = bound
		}
	}
	return end
}

// ParentReplaced says whether a key bound to a parent by its UID (bound;
// empty for a key bound before keyward recorded UIDs, which is bound by
// name) finds another object under that parent's name (uid): the parent
// was deleted and created again, and the key never moves to it. The
// controller rejects such a key; the verifier refuses it meanwhile.
func ParentReplaced(bound, uid string) bool { return bound != "" && bound != uid }

// rotationTerm is how long each key of a rotating key works when its
// rotations come on time: every, then overlap more.
func rotationTerm(k *keywardv1alpha1.APIKey) time.Duration {
	return k.Spec.Rotation.Every.Duration + k.RotationOverlap()
}

// KeyStopsCounting reports whether a key no longer counts against
// maxKeysPerApplication, whatever else is known of it: revoked, being
// deleted, or expired at now.
func KeyStopsCounting(k *keywardv1alpha1.APIKey, now time.Time) bool {
	return k.Spec.Revoked || !k.DeletionTimestamp.IsZero() || (k.Spec.ExpiresAt != nil && !k.Spec.ExpiresAt.After(now))
}

// KeyOccupiesSlot says, from the key's spec and status alone, whether it
// counts against maxKeysPerApplication: Active and Disabled keys do, and so
// do keys not issued yet that the controller will issue (it issues older
// keys first, so every key already there comes before a new one). Revoked,
// expired, rejected and deleted keys do not, nor keys with a scope the
// group lacks (they will be Rejected). Admission counts with it; the
// controller counts minted keys by their hashed Secret's state, which
// status only mirrors, and the others as here.
func KeyOccupiesSlot(k *keywardv1alpha1.APIKey, g *keywardv1alpha1.KeyGroup, now time.Time) bool {
	if KeyStopsCounting(k, now) {
		return false
	}
	switch k.Status.Phase {
	case keywardv1alpha1.APIKeyActive, keywardv1alpha1.APIKeyDisabled:
		return true
	case keywardv1alpha1.APIKeyPending, "":
		return len(MissingScopes(k, g)) == 0
	}
	return false
}

// KeyCreatedBefore orders keys by creation time, then name: older keys are
// issued first.
func KeyCreatedBefore(a, b *keywardv1alpha1.APIKey) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// ApplicationRevoked reports whether none of an application's keys may
// work because it is revoked (in spec, or as decided).
func ApplicationRevoked(a *keywardv1alpha1.Application) bool {
	return a.Spec.Revoked || a.Status.Phase == keywardv1alpha1.ApplicationRevoked
}

// ApplicationUsable reports whether an application can hold working keys:
// neither revoked, rejected nor being deleted.
func ApplicationUsable(a *keywardv1alpha1.Application) bool {
	return !ApplicationRevoked(a) && a.Status.Phase != keywardv1alpha1.ApplicationRejected && a.DeletionTimestamp.IsZero()
}

// ApplicationAdmittedTo says whether an application is Active in this
// group: made Active in it, not in one of the same name that was deleted
// since. An application made Active before keyward recorded the group's UID
// counts as admitted to the group that exists.
func ApplicationAdmittedTo(a *keywardv1alpha1.Application, g *keywardv1alpha1.KeyGroup) bool {
	return a.Status.Phase == keywardv1alpha1.ApplicationActive && (a.Status.KeyGroupUID == "" || a.Status.KeyGroupUID == g.UID)
}

// ApplicationOccupiesSlot says whether an application counts against its
// group's maxApplications: Active ones, and ones not decided on yet, unless
// revoked or being deleted.
func ApplicationOccupiesSlot(a *keywardv1alpha1.Application) bool {
	if a.Spec.Revoked || !a.DeletionTimestamp.IsZero() {
		return false
	}
	switch a.Status.Phase {
	case keywardv1alpha1.ApplicationActive, keywardv1alpha1.ApplicationPending, "":
		return true
	}
	return false
}

// ScopeRuleError is a scope rule of a KeyGroup that the verifier cannot
// match.
type ScopeRuleError struct {
	// Scope and Rule index spec.scopes[Scope].rules[Rule]; Path indexes
	// its paths, or is -1 when the rule's methods are at fault.
	Scope, Rule, Path int
	Err               error
}

// ScopeRuleErrors compiles every path and the methods of every scope rule
// with match.CompileRule, as the verifier will, and returns what fails.
func ScopeRuleErrors(g *keywardv1alpha1.KeyGroup) []ScopeRuleError {
	var errs []ScopeRuleError
	for i, s := range g.Spec.Scopes {
		for j, r := range s.Rules {
			for k, p := range r.Paths {
				if _, err := match.CompileRule([]string{string(p)}, nil); err != nil {
					errs = append(errs, ScopeRuleError{Scope: i, Rule: j, Path: k, Err: err})
				}
			}
			methods := make([]string, 0, len(r.Methods))
			for _, m := range r.Methods {
				methods = append(methods, string(m))
			}
			if _, err := match.CompileRule([]string{"/"}, methods); err != nil {
				errs = append(errs, ScopeRuleError{Scope: i, Rule: j, Path: -1, Err: err})
			}
		}
	}
	return errs
}
