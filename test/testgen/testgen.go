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

// Package testgen builds keyward objects for tests, in the style of
// cert-manager's test/unit/gen: a valid object by default, changed by
// options.
package testgen

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

// KeyGroupOption changes a KeyGroup.
type KeyGroupOption func(*keywardv1alpha1.KeyGroup)

// KeyGroup returns a valid KeyGroup with two scopes: "read" (GET /v1/things/*)
// and "write" (POST, PUT /v1/things/*).
func KeyGroup(namespace, name string, opts ...KeyGroupOption) *keywardv1alpha1.KeyGroup {
	g := &keywardv1alpha1.KeyGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: keywardv1alpha1.KeyGroupSpec{
			Description: "Things API",
			KeyPrefix:   "kt",
			Scopes: []keywardv1alpha1.Scope{
				{Name: "read", Rules: []keywardv1alpha1.ScopeRule{{Paths: []keywardv1alpha1.ScopePath{"/v1/things/*"}, Methods: []keywardv1alpha1.HTTPMethod{"GET"}}}},
				{Name: "write", Rules: []keywardv1alpha1.ScopeRule{{Paths: []keywardv1alpha1.ScopePath{"/v1/things/*"}, Methods: []keywardv1alpha1.HTTPMethod{"POST", "PUT"}}}},
			},
			Limits: keywardv1alpha1.KeyGroupLimits{MaxApplications: ptr.To[int32](10), MaxKeysPerApplication: ptr.To[int32](10)},
		},
	}
	for _, o := range opts {
		o(g)
	}
	return g
}

// WithPrefix sets the key prefix.
func WithPrefix(p string) KeyGroupOption {
	return func(g *keywardv1alpha1.KeyGroup) { g.Spec.KeyPrefix = p }
}

// WithLimits sets maxApplications and maxKeysPerApplication.
func WithLimits(apps, keys int32) KeyGroupOption {
	return func(g *keywardv1alpha1.KeyGroup) {
		g.Spec.Limits = keywardv1alpha1.KeyGroupLimits{MaxApplications: &apps, MaxKeysPerApplication: &keys}
	}
}

// WithScope adds a scope with one rule.
func WithScope(name string, methods []string, paths ...string) KeyGroupOption {
	return func(g *keywardv1alpha1.KeyGroup) {
		r := keywardv1alpha1.ScopeRule{}
		for _, p := range paths {
			r.Paths = append(r.Paths, keywardv1alpha1.ScopePath(p))
		}
		for _, m := range methods {
			r.Methods = append(r.Methods, keywardv1alpha1.HTTPMethod(m))
		}
		g.Spec.Scopes = append(g.Spec.Scopes, keywardv1alpha1.Scope{Name: keywardv1alpha1.ScopeName(name), Rules: []keywardv1alpha1.ScopeRule{r}})
	}
}

// WithGroupSourceRanges sets the group's allowedSourceRanges.
func WithGroupSourceRanges(cidrs ...string) KeyGroupOption {
	return func(g *keywardv1alpha1.KeyGroup) { g.Spec.AllowedSourceRanges = toCIDRs(cidrs) }
}

// WithMaxKeyLifetime sets maxKeyLifetime.
func WithMaxKeyLifetime(d time.Duration) KeyGroupOption {
	return func(g *keywardv1alpha1.KeyGroup) { g.Spec.MaxKeyLifetime = &metav1.Duration{Duration: d} }
}

// WithDeletionProtection sets deletionProtection.
func WithDeletionProtection(confirm keywardv1alpha1.DeletionConfirmation, window time.Duration) KeyGroupOption {
	return func(g *keywardv1alpha1.KeyGroup) {
		g.Spec.DeletionProtection = keywardv1alpha1.DeletionProtection{Confirm: confirm, RecentUseWindow: &metav1.Duration{Duration: window}}
	}
}

// ApplicationOption changes an Application.
type ApplicationOption func(*keywardv1alpha1.Application)

// Application returns a valid Application of the group, created by
// AdminUser (the mutating webhook, where it runs, records the real one).
func Application(namespace, name, group string, opts ...ApplicationOption) *keywardv1alpha1.Application {
	a := &keywardv1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Annotations: map[string]string{keywardv1alpha1.AnnotationCreatedBy: AdminUser}},
		Spec: keywardv1alpha1.ApplicationSpec{
			KeyGroup:    keywardv1alpha1.ObjectName(group),
			DisplayName: "Test application " + name,
			Type:        keywardv1alpha1.ApplicationTypeApplication,
		},
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

// WithExternalID sets the externalID.
func WithExternalID(id string) ApplicationOption {
	return func(a *keywardv1alpha1.Application) { a.Spec.ExternalID = id }
}

// APIKeyOption changes an APIKey.
type APIKeyOption func(*keywardv1alpha1.APIKey)

// AdminIdentity is the keyward.dev/grant-check value of the keys APIKey
// returns: a cluster administrator, who may grant every scope. Where the
// mutating webhook runs it overwrites it with the real creator; without
// the webhook (controller tests) it is the creator the controller asks
// about before minting.
const AdminIdentity = `{"username":"` + AdminUser + `","groups":["system:masters","system:authenticated"]}`

// AdminUser is the user name in AdminIdentity.
const AdminUser = "testgen-admin"

// APIKey returns a valid APIKey of the application with the given scopes
// ("read" when none are given), created by AdminIdentity.
func APIKey(namespace, name, application string, opts ...APIKeyOption) *keywardv1alpha1.APIKey {
	k := &keywardv1alpha1.APIKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Annotations: map[string]string{keywardv1alpha1.AnnotationGrantCheck: AdminIdentity}},
		Spec: keywardv1alpha1.APIKeySpec{
			Application: keywardv1alpha1.ObjectName(application),
			Scopes:      []keywardv1alpha1.ScopeName{"read"},
		},
	}
	for _, o := range opts {
		o(k)
	}
	return k
}

// WithScopes sets the key's scopes.
func WithScopes(scopes ...string) APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) {
		k.Spec.Scopes = nil
		for _, s := range scopes {
			k.Spec.Scopes = append(k.Spec.Scopes, keywardv1alpha1.ScopeName(s))
		}
	}
}

// WithExpiry sets expiresAt.
func WithExpiry(t time.Time) APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) { mt := metav1.NewTime(t); k.Spec.ExpiresAt = &mt }
}

// WithSourceRanges sets the key's allowedSourceRanges.
func WithSourceRanges(cidrs ...string) APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) { k.Spec.AllowedSourceRanges = toCIDRs(cidrs) }
}

// WithSecretName sets the delivery Secret's name.
func WithSecretName(name string) APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) { k.Spec.SecretName = name }
}

// Disabled creates the key switched off.
func Disabled() APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = true }
}

func toCIDRs(in []string) []keywardv1alpha1.CIDR {
	out := make([]keywardv1alpha1.CIDR, 0, len(in))
	for _, c := range in {
		out = append(out, keywardv1alpha1.CIDR(c))
	}
	return out
}

// WithRotation sets the key's rotation schedule.
func WithRotation(every, overlap time.Duration) APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) {
		k.Spec.Rotation = &keywardv1alpha1.APIKeyRotation{Every: metav1.Duration{Duration: every}, Overlap: &metav1.Duration{Duration: overlap}}
	}
}

// BadChecksum returns key with its last character (part of the checksum)
// replaced by a different one, so that it no longer parses as a key.
func BadChecksum(key string) string {
	last := byte('0')
	if key[len(key)-1] == last {
		last = '1'
	}
	return key[:len(key)-1] + string(last)
}
