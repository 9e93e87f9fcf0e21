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

package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/grants"
	"github.com/keyward/keyward/internal/rules"
	"github.com/keyward/keyward/test/testgen"
)

var (
	now   = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	alice = authenticationv1.UserInfo{Username: "alice", UID: "alice-uid", Groups: []string{"system:authenticated"}}
	robot = authenticationv1.UserInfo{Username: "system:serviceaccount:ns:robot", UID: "robot-uid", Groups: []string{"system:serviceaccounts"}}
)

// checkErrors compares errors exactly, and prints them as the API server
// would when they differ.
func checkErrors(t *testing.T, got, want field.ErrorList) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors differ\n got: %s\nwant: %s", show(got), show(want))
	}
}

func show(errs field.ErrorList) string {
	s := make([]string, 0, len(errs))
	for _, e := range errs {
		s = append(s, fmt.Sprintf("%q", e.Error()))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func checkWarnings(t *testing.T, got admission.Warnings, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual([]string(got), want) {
		t.Errorf("warnings differ\n got: %q\nwant: %q", got, want)
	}
}

// by returns the creator annotations the mutating webhook sets for u.
func by(u authenticationv1.UserInfo) map[string]string {
	a := map[string]string{}
	setAnnotationsMap(a, creatorAnnotations(u))
	return a
}

func setAnnotationsMap(dst, src map[string]string) {
	for k, v := range src {
		if v != "" {
			dst[k] = v
		}
	}
}

func TestValidateKeyGroup(t *testing.T) {
	scopes := field.NewPath("spec", "scopes")
	base := func(opts ...testgen.KeyGroupOption) *keywardv1alpha1.KeyGroup {
		return testgen.KeyGroup("ns", "things", opts...)
	}
	tests := []struct {
		name     string
		old, new *keywardv1alpha1.KeyGroup
		errs     field.ErrorList
		warnings []string
	}{
		{name: "valid", new: base()},
		{
			name: "prefix gitleaks hides", new: base(testgen.WithPrefix("truecar")),
			warnings: []string{`spec.keyPrefix "truecar": gitleaks' default rules drop every secret that starts with "true" or holds "false", so the gitleaks rule of docs/secret-scanning, as shipped, would never report a leaked key of this group; the prefix cannot change once keys are issued, so choose another now (docs/leaked-keys.md, "What scanners miss")`},
		},
		{name: "prefix holding false", new: base(testgen.WithPrefix("isfalse")), warnings: []string{fmt.Sprintf(WarnPrefixHiddenFromGitleaks, "isfalse")}},
		{name: "prefix gitleaks finds", new: base(testgen.WithPrefix("trunull"))},
		{name: "prefix gitleaks hides, unchanged", old: base(testgen.WithPrefix("truecar")), new: base(testgen.WithPrefix("truecar"))},
		{
			name: "paths and methods the verifier cannot match",
			new:  base(testgen.WithScope("odd", []string{"get", "GET"}, "/ok", "/a//b", "/x/*/y", "/v1/../admin")),
			errs: field.ErrorList{
				field.Invalid(scopes.Index(2).Child("rules").Index(0).Child("paths").Index(1), "/a//b",
					`the verifier cannot match it: rule path "/a//b" is not in normalised form (no "//", "." or ".." segments, '%', '?', '#', ';', '\\' or control characters)`),
				field.Invalid(scopes.Index(2).Child("rules").Index(0).Child("paths").Index(2), "/x/*/y",
					`the verifier cannot match it: rule path "/x/*/y": '*' is only allowed as a final "/*"`),
				field.Invalid(scopes.Index(2).Child("rules").Index(0).Child("paths").Index(3), "/v1/../admin",
					`the verifier cannot match it: rule path "/v1/../admin" is not in normalised form (no "//", "." or ".." segments, '%', '?', '#', ';', '\\' or control characters)`),
				field.Invalid(scopes.Index(2).Child("rules").Index(0).Child("methods"), []string{"get", "GET"},
					`the verifier cannot match it: rule method "get" is not an upper-case HTTP token`),
			},
		},
		{name: "unchanged", old: base(), new: base()},
		{name: "default prefix written out", old: base(testgen.WithPrefix("")), new: base(testgen.WithPrefix("kw"))},
		{
			name: "prefix changed",
			old:  base(), new: base(testgen.WithPrefix("other")),
			errs: field.ErrorList{field.Forbidden(field.NewPath("spec", "keyPrefix"), "field is immutable: keys already issued carry it; create a new KeyGroup for another prefix")},
		},
		{
			name: "scope removed, limits lowered, lifetime shortened",
			old:  base(testgen.WithMaxKeyLifetime(48 * time.Hour)),
			new: base(testgen.WithLimits(3, 2), testgen.WithMaxKeyLifetime(24*time.Hour), func(g *keywardv1alpha1.KeyGroup) {
				g.Spec.Scopes = g.Spec.Scopes[:1]
			}),
			warnings: []string{
				`scope "write" removed: every key that holds it becomes Rejected and stops working for good`,
				"spec.limits.maxApplications lowered from 10 to 3: what is over the new limit keeps working, and nothing new is admitted until the count is below it",
				"spec.limits.maxKeysPerApplication lowered from 10 to 2: what is over the new limit keeps working, and nothing new is admitted until the count is below it",
				"maxKeyLifetime is checked for keys created from now on; existing keys keep their expiresAt, but each key of a rotating APIKey now ends at most maxKeyLifetime after it was issued",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := validateKeyGroup(tt.old, tt.new)
			checkErrors(t, v.errs, tt.errs)
			checkWarnings(t, v.warnings, tt.warnings)
		})
	}
}

func TestValidateApplication(t *testing.T) {
	ann := field.NewPath("metadata", "annotations")
	app := func(annotations map[string]string, opts ...testgen.ApplicationOption) *keywardv1alpha1.Application {
		a := testgen.Application("ns", "acme", "things", opts...)
		a.Annotations = annotations
		return a
	}
	revoked := func(a *keywardv1alpha1.Application) { a.Spec.Revoked = true }
	tests := []struct {
		name     string
		old, new *keywardv1alpha1.Application
		user     *authenticationv1.UserInfo
		errs     field.ErrorList
	}{
		{name: "created by alice", new: app(by(alice)), user: &alice},
		{name: "created by a ServiceAccount", new: app(by(robot)), user: &robot},
		{name: "creator not known", new: app(nil)},
		{
			name: "creator forged", new: app(map[string]string{keywardv1alpha1.AnnotationCreatedBy: "bob", keywardv1alpha1.AnnotationCreatedByUID: "x"}), user: &alice,
			errs: field.ErrorList{
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationCreatedBy), `is set by keyward to the user who creates the object ("alice")`),
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationCreatedByUID), `is set by keyward to the user who creates the object ("")`),
			},
		},
		{name: "description changed", old: app(by(alice)), new: app(by(alice), func(a *keywardv1alpha1.Application) { a.Spec.Description = "new" })},
		{name: "revoked", old: app(by(alice)), new: app(by(alice), revoked)},
		{
			name: "unrevoked", old: app(by(alice), revoked), new: app(by(alice)),
			errs: field.ErrorList{field.Forbidden(field.NewPath("spec", "revoked"), "cannot be set back to false; create a new Application instead")},
		},
		{
			name: "moved to another group", old: app(by(alice)), new: testgen.Application("ns", "acme", "other", func(a *keywardv1alpha1.Application) { a.Annotations = by(alice) }),
			errs: field.ErrorList{field.Forbidden(field.NewPath("spec", "keyGroup"), "field is immutable; create a new Application to move to another KeyGroup")},
		},
		{
			name: "creator changed", old: app(by(robot)), new: app(by(alice)),
			errs: field.ErrorList{
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationCreatedBy), "is set by keyward when the object is created and cannot be changed"),
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationCreatedByUID), "is set by keyward when the object is created and cannot be changed"),
			},
		},
		{
			name: "creator added later", old: app(nil), new: app(by(alice)),
			errs: field.ErrorList{field.Forbidden(ann.Key(keywardv1alpha1.AnnotationCreatedBy), "is set by keyward when the object is created and cannot be changed")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := validateApplication(tt.old, tt.new, tt.user)
			checkErrors(t, v.errs, tt.errs)
			checkWarnings(t, v.warnings, nil)
		})
	}
}

func TestApplicationLimit(t *testing.T) {
	g := testgen.KeyGroup("ns", "things", testgen.WithLimits(10, 10))
	checkErrors(t, applicationLimit(g, 9), nil)
	checkErrors(t, applicationLimit(g, 10), field.ErrorList{field.Forbidden(field.NewPath("spec", "keyGroup"),
		`KeyGroup "things" already has 10/10 applications that count against its maxApplications (Active ones and ones being admitted; revoked ones do not count); `+
			"revoke or delete one of its applications, or raise spec.limits.maxApplications of the group")})
}

// rotateRequest sets keyward.dev/rotate to a value.
func rotateRequest() testgen.APIKeyOption { return rotateValue("r1") }

// rotateValue sets keyward.dev/rotate to v.
func rotateValue(v string) testgen.APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) { k.Annotations[keywardv1alpha1.AnnotationRotate] = v }
}

// requestedBy sets keyward.dev/rotation-requested-by to user's identity.
func requestedBy(user authenticationv1.UserInfo) testgen.APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) {
		v, err := grants.Identity(user)
		if err != nil {
			panic(err)
		}
		k.Annotations[keywardv1alpha1.AnnotationRotationRequestedBy] = v
	}
}

// withGrantCheck records user in keyward.dev/grant-check, as the mutating
// webhook does for a key created before its Application.
func withGrantCheck(user authenticationv1.UserInfo) testgen.APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) {
		v, err := grants.Identity(user)
		if err != nil {
			panic(err)
		}
		if k.Annotations == nil {
			k.Annotations = map[string]string{}
		}
		k.Annotations[keywardv1alpha1.AnnotationGrantCheck] = v
	}
}

// boundTo records the parent UIDs, as the mutating webhook does.
func boundTo(app, group string) testgen.APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) {
		k.Annotations[keywardv1alpha1.AnnotationApplicationUID] = app
		k.Annotations[keywardv1alpha1.AnnotationKeyGroupUID] = group
	}
}

// without removes an annotation.
func without(annotation string) testgen.APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) { delete(k.Annotations, annotation) }
}

func TestValidateAPIKey(t *testing.T) {
	spec := field.NewPath("spec")
	ann := field.NewPath("metadata", "annotations")
	group := testgen.KeyGroup("ns", "things")
	group.UID = "group-uid"
	lifetime := testgen.KeyGroup("ns", "things", testgen.WithMaxKeyLifetime(30*24*time.Hour))
	lifetime.UID = "group-uid"
	app := testgen.Application("ns", "acme", "things", testgen.WithExternalID("EUI-1"))
	app.UID = "app-uid"
	app.Status.Phase = keywardv1alpha1.ApplicationActive
	revokedApp := app.DeepCopy()
	revokedApp.Spec.Revoked = true
	rejectedApp := app.DeepCopy()
	rejectedApp.Status.Phase = keywardv1alpha1.ApplicationRejected
	key := func(opts ...testgen.APIKeyOption) *keywardv1alpha1.APIKey {
		k := testgen.APIKey("ns", "k", "acme")
		k.Annotations = by(alice)
		withGrantCheck(alice)(k)
		for _, o := range opts {
			o(k)
		}
		return k
	}
	at := func(d time.Duration) testgen.APIKeyOption { return testgen.WithExpiry(now.Add(d)) }
	createdAt := func(t time.Time) testgen.APIKeyOption {
		return func(k *keywardv1alpha1.APIKey) { k.CreationTimestamp = metav1.NewTime(t) }
	}
	in := keyContext{app: app, group: group, now: now, user: &alice, minRotationEvery: time.Hour}
	with := func(f func(*keyContext)) keyContext { c := in; f(&c); return c }
	day := 24 * time.Hour

	tests := []struct {
		name     string
		old, new *keywardv1alpha1.APIKey
		in       keyContext
		errs     field.ErrorList
		warnings []string
	}{
		{name: "valid", new: key(), in: in},
		{name: "valid, group not there yet", new: key(testgen.WithScopes("anything")), in: with(func(c *keyContext) { c.group = nil })},
		{
			name: "no application yet: admitted, with the creator recorded for the controller's grant check",
			new:  key(), in: with(func(c *keyContext) { c.app, c.group = nil, nil }),
		},
		{
			name: "no grant check recorded", new: key(without(keywardv1alpha1.AnnotationGrantCheck)), in: in,
			errs: field.ErrorList{field.Forbidden(ann.Key(keywardv1alpha1.AnnotationGrantCheck), hintKeyAnnotationForged)},
		},
		{
			name: "grant check recorded for someone else", new: key(withGrantCheck(authenticationv1.UserInfo{Username: "root", Groups: []string{"system:masters"}})), in: in,
			errs: field.ErrorList{field.Forbidden(ann.Key(keywardv1alpha1.AnnotationGrantCheck), hintKeyAnnotationForged)},
		},
		{
			name: "grant check changed", old: key(withGrantCheck(alice)), new: key(withGrantCheck(authenticationv1.UserInfo{Username: "root"})), in: in,
			errs: field.ErrorList{field.Forbidden(ann.Key(keywardv1alpha1.AnnotationGrantCheck), hintKeyAnnotation)},
		},
		{name: "bound to the application and group it is admitted under", new: key(boundTo("app-uid", "group-uid")), in: in},
		{
			name: "bound to another application", new: key(boundTo("other-app-uid", "group-uid")), in: in,
			errs: field.ErrorList{field.Forbidden(ann.Key(keywardv1alpha1.AnnotationApplicationUID), hintKeyAnnotationForged)},
		},
		{
			name: "bound to another group", new: key(boundTo("app-uid", "other-group-uid")), in: in,
			errs: field.ErrorList{field.Forbidden(ann.Key(keywardv1alpha1.AnnotationKeyGroupUID), hintKeyAnnotationForged)},
		},
		{
			name: "bound while the application does not exist", new: key(boundTo("app-uid", "group-uid")), in: with(func(c *keyContext) { c.app, c.group = nil, nil }),
			errs: field.ErrorList{
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationApplicationUID), hintKeyAnnotationForged),
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationKeyGroupUID), hintKeyAnnotationForged),
			},
		},
		{
			name: "binding changed", old: key(boundTo("app-uid", "group-uid")), new: key(boundTo("app-uid", "new-group-uid")), in: in,
			errs: field.ErrorList{field.Forbidden(ann.Key(keywardv1alpha1.AnnotationKeyGroupUID), hintKeyAnnotation)},
		},
		{
			name: "binding dropped", old: key(boundTo("app-uid", "group-uid")), new: key(without(keywardv1alpha1.AnnotationApplicationUID)), in: in,
			errs: field.ErrorList{
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationApplicationUID), hintKeyAnnotation),
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationKeyGroupUID), hintKeyAnnotation),
			},
		},
		{
			name: "revoked application", new: key(), in: with(func(c *keyContext) { c.app = revokedApp }),
			errs: field.ErrorList{field.Forbidden(spec.Child("application"), `Application "acme" is revoked: none of its keys can work`)},
		},
		{
			name: "rejected application", new: key(), in: with(func(c *keyContext) { c.app = rejectedApp }),
			errs: field.ErrorList{field.Forbidden(spec.Child("application"), `Application "acme" was rejected (over its KeyGroup's maxApplications): none of its keys can work; use an Active application`)},
		},
		{
			name: "unknown scopes", new: key(testgen.WithScopes("read", "admin", "delete")), in: in,
			errs: field.ErrorList{
				field.NotSupported(spec.Child("scopes").Index(1), "admin", []string{"read", "write"}),
				field.NotSupported(spec.Child("scopes").Index(2), "delete", []string{"read", "write"}),
			},
		},
		{
			name: "forged creator", new: func() *keywardv1alpha1.APIKey {
				k := key()
				k.Annotations = by(robot)
				withGrantCheck(alice)(k)
				return k
			}(), in: in,
			errs: field.ErrorList{
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationCreatedBy), `is set by keyward to the user who creates the object ("alice")`),
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationCreatedByUID), `is set by keyward to the user who creates the object ("")`),
			},
		},
		{name: "within maxKeyLifetime", new: key(at(30 * 24 * time.Hour)), in: with(func(c *keyContext) { c.group = lifetime })},
		{
			name: "no expiry under maxKeyLifetime", new: key(), in: with(func(c *keyContext) { c.group = lifetime }),
			errs: field.ErrorList{field.Required(spec.Child("expiresAt"), `KeyGroup "things" sets maxKeyLifetime 720h0m0s: set expiresAt, no later than 2026-07-01T12:00:00Z, or set spec.rotation so that each key works at most that long`)},
		},
		{
			name: "beyond maxKeyLifetime", new: key(at(31 * 24 * time.Hour)), in: with(func(c *keyContext) { c.group = lifetime }),
			errs: field.ErrorList{field.Invalid(spec.Child("expiresAt"), "2026-07-02T12:00:00Z",
				`is more than maxKeyLifetime 720h0m0s of KeyGroup "things" after the key's creation; set it no later than 2026-07-01T12:00:00Z`)},
		},
		{
			name: "lifetime counts from creationTimestamp", new: key(at(30*24*time.Hour), createdAt(now.Add(-time.Hour))), in: with(func(c *keyContext) { c.group = lifetime }),
			errs: field.ErrorList{field.Invalid(spec.Child("expiresAt"), "2026-07-01T12:00:00Z",
				`is more than maxKeyLifetime 720h0m0s of KeyGroup "things" after the key's creation; set it no later than 2026-07-01T11:00:00Z`)},
		},
		{name: "already expired", new: key(at(-time.Second)), in: in, warnings: []string{WarnAlreadyExpired}},

		{name: "description and switches changed", old: key(), new: key(testgen.Disabled(), func(k *keywardv1alpha1.APIKey) { k.Spec.Description = "x" }), in: in},
		{name: "scopes reordered", old: key(testgen.WithScopes("read", "write")), new: key(testgen.WithScopes("write", "read")), in: in},
		{name: "revoked", old: key(), new: key(func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true }), in: in},
		{name: "expiry set", old: key(), new: key(at(time.Hour)), in: in},
		{name: "expiry earlier", old: key(at(2 * time.Hour)), new: key(at(time.Hour)), in: in},
		{
			name: "every immutable field changed", in: in,
			old: key(testgen.WithScopes("read"), testgen.WithSecretName("a"), at(time.Hour), func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true }),
			new: func() *keywardv1alpha1.APIKey {
				k := key(testgen.WithScopes("read", "write"), testgen.WithSecretName("b"), at(2*time.Hour))
				k.Spec.Application = "other"
				k.Annotations = by(robot)
				withGrantCheck(alice)(k)
				return k
			}(),
			errs: field.ErrorList{
				field.Forbidden(spec.Child("application"), "field is immutable; create a new APIKey for another application"),
				field.Forbidden(spec.Child("scopes"), "field is immutable; create a new APIKey to change scopes"),
				field.Forbidden(spec.Child("secretName"), "field is immutable: the key was delivered to this Secret once; copy the Secret if it must live elsewhere"),
				field.Forbidden(spec.Child("revoked"), "cannot be set back to false; create a new APIKey instead"),
				field.Invalid(spec.Child("expiresAt"), "2026-06-01T14:00:00Z", "may move earlier, never later; create a new APIKey for a longer lifetime (it is 2026-06-01T13:00:00Z)"),
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationCreatedBy), "is set by keyward when the object is created and cannot be changed"),
				field.Forbidden(ann.Key(keywardv1alpha1.AnnotationCreatedByUID), "is set by keyward when the object is created and cannot be changed"),
			},
		},
		{
			name: "expiry removed", old: key(at(time.Hour)), new: key(), in: in,
			errs: field.ErrorList{field.Forbidden(spec.Child("expiresAt"), "cannot be removed once set; create a new APIKey for a longer lifetime")},
		},
		{
			name: "expiry set beyond maxKeyLifetime", in: with(func(c *keyContext) { c.group = lifetime }),
			old: key(createdAt(now)), new: key(createdAt(now), at(40*24*time.Hour)),
			errs: field.ErrorList{field.Invalid(spec.Child("expiresAt"), "2026-07-11T12:00:00Z",
				`is more than maxKeyLifetime 720h0m0s of KeyGroup "things" after the key's creation; set it no later than 2026-07-01T12:00:00Z`)},
		},
		{name: "unchanged key of a group that gained maxKeyLifetime", old: key(createdAt(now)), new: key(createdAt(now)), in: with(func(c *keyContext) { c.group = lifetime })},
		{name: "rotating, no expiry under maxKeyLifetime", new: key(testgen.WithRotation(7*day, day)), in: with(func(c *keyContext) { c.group = lifetime })},
		{
			name: "rotating, every + overlap beyond maxKeyLifetime", new: key(testgen.WithRotation(29*day, 2*day)), in: with(func(c *keyContext) { c.group = lifetime }),
			errs: field.ErrorList{field.Invalid(spec.Child("rotation", "every"), "696h0m0s",
				`every + overlap (744h0m0s) is more than maxKeyLifetime 720h0m0s of KeyGroup "things": each key works for every, then overlap more; shorten every or overlap`)},
		},
		{
			name: "rotating more often than the manager allows", new: key(testgen.WithRotation(30*time.Minute, time.Minute)), in: in,
			errs: field.ErrorList{field.Invalid(spec.Child("rotation", "every"), "30m0s",
				"is shorter than 1h0m0s, the shortest rotation this keyward allows (the manager's --min-rotation-every); rotate less often")},
		},
		{
			name: "rotation changed to more often than allowed", old: key(testgen.WithRotation(2*time.Hour, time.Minute)), new: key(testgen.WithRotation(59*time.Minute, time.Minute)), in: in,
			errs: field.ErrorList{field.Invalid(spec.Child("rotation", "every"), "59m0s",
				"is shorter than 1h0m0s, the shortest rotation this keyward allows (the manager's --min-rotation-every); rotate less often")},
		},
		{
			name: "a rotation without every", new: key(testgen.WithRotation(0, time.Hour)), in: in,
			errs: field.ErrorList{field.Required(spec.Child("rotation", "every"), "set how long each key works before its successor is minted, such as 2160h for 90 days")},
		},
		{
			name: "a negative overlap", new: key(testgen.WithRotation(2*time.Hour, -time.Hour)), in: in,
			errs: field.ErrorList{field.Invalid(spec.Child("rotation", "overlap"), "-1h0m0s",
				"is shorter than 1m0s: the previous key keeps working this long after a rotation, for consumers to pick up the new one; omit it for 24h0m0s")},
		},
		{
			name: "no overlap", old: key(testgen.WithRotation(2*time.Hour, time.Hour)), new: key(testgen.WithRotation(2*time.Hour, 0)), in: in,
			errs: field.ErrorList{field.Invalid(spec.Child("rotation", "overlap"), "0s",
				"is shorter than 1m0s: the previous key keeps working this long after a rotation, for consumers to pick up the new one; omit it for 24h0m0s")},
		},
		{
			name: "a rotation request records who asked", in: in,
			old: key(), new: key(rotateRequest(), requestedBy(alice)),
		},
		{
			name: "a rotation request of 253 bytes", in: in,
			old: key(), new: key(rotateValue(strings.Repeat("7", 253)), requestedBy(alice)),
		},
		{
			name: "a rotation request too long for status to echo", in: in,
			old: key(), new: key(rotateValue(strings.Repeat("7", 254)), requestedBy(alice)),
			errs: field.ErrorList{field.TooLong(ann.Key(keywardv1alpha1.AnnotationRotate), "", 253)},
		},
		{
			name: "a rotation request with a terminal escape", in: in,
			old: key(), new: key(rotateValue("\x1b[31mnow"), requestedBy(alice)),
			errs: field.ErrorList{field.Invalid(ann.Key(keywardv1alpha1.AnnotationRotate), "\x1b[31mnow",
				`holds '\x1b', which is not a printable character; status.rotation.lastRotateRequest echoes the value: use a timestamp, such as 2026-11-30T12:00:00Z`)},
		},
		{
			name: "a rotate value with a line break, on create", in: in, new: key(rotateValue("a\nb")),
			errs: field.ErrorList{field.Invalid(ann.Key(keywardv1alpha1.AnnotationRotate), "a\nb",
				`holds '\n', which is not a printable character; status.rotation.lastRotateRequest echoes the value: use a timestamp, such as 2026-11-30T12:00:00Z`)},
		},
		{
			name: "a value admitted before the rule stays", in: in,
			old: key(rotateValue("a\nb")), new: key(rotateValue("a\nb"), func(k *keywardv1alpha1.APIKey) { k.Spec.Description = "edited" }),
		},
		{
			name: "a rotation request recorded for someone else", in: in,
			old: key(), new: key(rotateRequest(), requestedBy(authenticationv1.UserInfo{Username: "root", Groups: []string{"system:masters"}})),
			errs: field.ErrorList{field.Forbidden(ann.Key(keywardv1alpha1.AnnotationRotationRequestedBy), hintKeyAnnotationForged)},
		},
		{
			name: "the requester changed without a rotation request", in: in,
			old: key(rotateRequest()), new: key(rotateRequest(), requestedBy(alice)),
			errs: field.ErrorList{field.Forbidden(ann.Key(keywardv1alpha1.AnnotationRotationRequestedBy), hintKeyAnnotationForged)},
		},
		{
			name: "a requester sent on create", in: in, new: key(requestedBy(alice)),
			errs: field.ErrorList{field.Forbidden(ann.Key(keywardv1alpha1.AnnotationRotationRequestedBy), hintKeyAnnotationForged)},
		},
		{name: "an old key allowed when the minimum was lower stays", old: key(testgen.WithRotation(time.Minute, time.Second)), new: key(testgen.WithRotation(time.Minute, time.Second)), in: in},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := validateAPIKey(tt.old, tt.new, tt.in)
			checkErrors(t, v.errs, tt.errs)
			checkWarnings(t, v.warnings, tt.warnings)
		})
	}
}

func TestValidateAPIKeyDelete(t *testing.T) {
	p := field.NewPath("metadata", "annotations").Key(keywardv1alpha1.AnnotationConfirmDelete)
	groupOf := func(c keywardv1alpha1.DeletionConfirmation) *keywardv1alpha1.KeyGroup {
		return testgen.KeyGroup("ns", "things", testgen.WithDeletionProtection(c, 72*time.Hour))
	}
	app := testgen.Application("ns", "acme", "things", testgen.WithExternalID("EUI-1"))
	noID := testgen.Application("ns", "acme", "things")
	key := func(lastUsed time.Duration, confirm string) *keywardv1alpha1.APIKey {
		k := testgen.APIKey("ns", "k", "acme")
		if lastUsed != 0 {
			t := metav1.NewTime(now.Add(-lastUsed))
			k.Status.LastUsedTime = &t
		}
		if confirm != "" {
			k.Annotations = map[string]string{keywardv1alpha1.AnnotationConfirmDelete: confirm}
		}
		return k
	}
	// previousUsed is a rotated key whose previous generation was used
	// lastUsed ago and whose current one never was.
	previousUsed := func(lastUsed time.Duration) *keywardv1alpha1.APIKey {
		k := key(0, "")
		t := metav1.NewTime(now.Add(-lastUsed))
		k.Status.Rotation = &keywardv1alpha1.APIKeyRotationStatus{PreviousKeyID: "kw_abcd", PreviousKeyLastUsedTime: &t}
		return k
	}
	recentlyUsed := `KeyGroup "things" asks to confirm deleting keys used within 72h0m0s, and this key was last used at 2026-06-01T11:00:00Z`
	always := `KeyGroup "things" asks to confirm deleting any of its keys`
	tests := []struct {
		name  string
		key   *keywardv1alpha1.APIKey
		mode  keywardv1alpha1.DeletionConfirmation
		noApp bool
		app   *keywardv1alpha1.Application
		errs  field.ErrorList
	}{
		{name: "never used", key: key(0, ""), mode: keywardv1alpha1.ConfirmRecentlyUsed},
		{name: "used long ago", key: key(72*time.Hour, ""), mode: keywardv1alpha1.ConfirmRecentlyUsed},
		{
			name: "used recently, not confirmed", key: key(time.Hour, ""), mode: keywardv1alpha1.ConfirmRecentlyUsed,
			errs: field.ErrorList{field.Required(p, recentlyUsed+`: set this annotation to the externalID of Application "acme", then delete again`)},
		},
		{
			name: "used recently, wrong confirmation", key: key(time.Hour, "acme"), mode: keywardv1alpha1.ConfirmRecentlyUsed,
			errs: field.ErrorList{field.Invalid(p, "acme", recentlyUsed+`: must be the externalID of Application "acme"`)},
		},
		{name: "used recently, confirmed", key: key(time.Hour, "EUI-1"), mode: keywardv1alpha1.ConfirmRecentlyUsed},
		{
			name: "its previous key used recently, during a rotation's overlap", key: previousUsed(time.Hour), mode: keywardv1alpha1.ConfirmRecentlyUsed,
			errs: field.ErrorList{field.Required(p, recentlyUsed+`: set this annotation to the externalID of Application "acme", then delete again`)},
		},
		{name: "its previous key used long ago", key: previousUsed(72 * time.Hour), mode: keywardv1alpha1.ConfirmRecentlyUsed},
		{name: "default mode is RecentlyUsed", key: key(time.Hour, ""), mode: "",
			errs: field.ErrorList{field.Required(p, recentlyUsed+`: set this annotation to the externalID of Application "acme", then delete again`)}},
		{
			name: "application without externalID", key: key(time.Hour, "EUI-1"), mode: keywardv1alpha1.ConfirmRecentlyUsed, app: noID,
			errs: field.ErrorList{field.Invalid(p, "EUI-1", recentlyUsed+`: must be the name of Application "acme", which has no externalID`)},
		},
		{name: "application without externalID, confirmed by name", key: key(time.Hour, "acme"), mode: keywardv1alpha1.ConfirmRecentlyUsed, app: noID},
		{
			name: "always, unused", key: key(0, ""), mode: keywardv1alpha1.ConfirmAlways,
			errs: field.ErrorList{field.Required(p, always+`: set this annotation to the externalID of Application "acme", then delete again`)},
		},
		{name: "always, confirmed", key: key(0, "EUI-1"), mode: keywardv1alpha1.ConfirmAlways},
		{name: "never", key: key(time.Minute, ""), mode: keywardv1alpha1.ConfirmNever},
		{name: "application gone", key: key(time.Minute, ""), mode: keywardv1alpha1.ConfirmAlways, noApp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := keyContext{app: app, group: groupOf(tt.mode), now: now}
			if tt.app != nil {
				in.app = tt.app
			}
			if tt.noApp {
				in.app, in.group = nil, nil
			}
			checkErrors(t, validateAPIKeyDelete(tt.key, in), tt.errs)
		})
	}
}

func TestKeyLimit(t *testing.T) {
	g := testgen.KeyGroup("ns", "things", testgen.WithLimits(10, 10))
	app := testgen.Application("ns", "acme", "things")
	checkErrors(t, keyLimit(app, g, 9), nil)
	checkErrors(t, keyLimit(app, g, 10), field.ErrorList{field.Forbidden(field.NewPath("spec", "application"),
		`Application "acme" already has 10/10 keys that count against maxKeysPerApplication of KeyGroup "things" (Active, Disabled and being issued; revoked and expired keys do not count); `+
			"revoke or delete one of its keys, or raise spec.limits.maxKeysPerApplication of the group")})
}

func TestOccupiesKeySlot(t *testing.T) {
	g := testgen.KeyGroup("ns", "things")
	phase := func(p keywardv1alpha1.APIKeyPhase) testgen.APIKeyOption {
		return func(k *keywardv1alpha1.APIKey) { k.Status.Phase = p }
	}
	deleting := func(k *keywardv1alpha1.APIKey) { t := metav1.NewTime(now); k.DeletionTimestamp = &t }
	tests := []struct {
		name string
		key  *keywardv1alpha1.APIKey
		want bool
	}{
		{"active", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyActive)), true},
		{"disabled", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyDisabled)), true},
		{"not decided yet", testgen.APIKey("ns", "k", "a"), true},
		{"pending", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyPending)), true},
		{"pending with a scope the group lacks", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyPending), testgen.WithScopes("gone")), false},
		{"active, being revoked", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyActive), func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true }), false},
		{"active, expired by now", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyActive), testgen.WithExpiry(now)), false},
		{"active, expires later", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyActive), testgen.WithExpiry(now.Add(time.Second))), true},
		{"active, being deleted", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyActive), deleting), false},
		{"revoked", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyRevoked)), false},
		{"expired", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyExpired)), false},
		{"rejected", testgen.APIKey("ns", "k", "a", phase(keywardv1alpha1.APIKeyRejected)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rules.KeyOccupiesSlot(tt.key, g, now); got != tt.want {
				t.Errorf("KeyOccupiesSlot = %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeGrants is a GrantChecker that allows what it lists.
type fakeGrants map[string]bool

func (g fakeGrants) CanGrant(_ context.Context, user authenticationv1.UserInfo, namespace, keyGroup, scope string) (bool, error) {
	if g == nil {
		return false, errors.New("authorizer down")
	}
	return g[user.Username+"/"+namespace+"/"+grants.ScopeResourceName(keyGroup, scope)], nil
}

func TestCheckGrants(t *testing.T) {
	g := testgen.KeyGroup("ns", "things")
	app := testgen.Application("ns", "acme", "things")
	k := testgen.APIKey("ns", "k", "acme", testgen.WithScopes("read", "write", "gone"))
	in := keyContext{app: app, group: g, user: &alice}
	errs, err := checkGrants(context.Background(), fakeGrants{"alice/ns/things.read": true}, k, in)
	if err != nil {
		t.Fatal(err)
	}
	checkErrors(t, errs, field.ErrorList{field.Forbidden(field.NewPath("spec", "scopes").Index(1),
		`user "alice" may not grant scope "write" of KeyGroup "things": needs verb "grant" on scopes.keyward.dev named "things.write" in namespace "ns"`)})

	// Without the group, every scope is asked about, by the name the
	// application's group will have.
	in.group = nil
	errs, err = checkGrants(context.Background(), fakeGrants{"alice/ns/things.read": true, "alice/ns/things.write": true}, k, in)
	if err != nil {
		t.Fatal(err)
	}
	checkErrors(t, errs, field.ErrorList{field.Forbidden(field.NewPath("spec", "scopes").Index(2),
		`user "alice" may not grant scope "gone" of KeyGroup "things": needs verb "grant" on scopes.keyward.dev named "things.gone" in namespace "ns"`)})

	if _, err := checkGrants(context.Background(), fakeGrants(nil), k, in); err == nil {
		t.Error("an authorizer error was not returned")
	}
}

// defaulted runs the mutating webhook on obj as if user sent it.
func defaulted[T interface {
	*keywardv1alpha1.APIKey | *keywardv1alpha1.Application
	runtime.Object
	metav1.Object
}](t *testing.T, op admissionv1.Operation, user authenticationv1.UserInfo, old, obj T, finalizer string) T {
	t.Helper()
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: op, UserInfo: user}}
	if op == admissionv1.Update {
		raw, err := json.Marshal(old)
		if err != nil {
			t.Fatal(err)
		}
		req.OldObject = runtime.RawExtension{Raw: raw}
	}
	ctx := admission.NewContextWithRequest(context.Background(), req)
	if err := (&CreatedByDefaulter[T]{Finalizer: finalizer}).Default(ctx, obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestCreatedByDefaulter(t *testing.T) {
	forged := map[string]string{keywardv1alpha1.AnnotationCreatedBy: "bob", keywardv1alpha1.AnnotationCreatedByUID: "bob-uid", "team": "a"}
	k := testgen.APIKey("ns", "k", "acme")
	k.Annotations = forged
	k = defaulted(t, admissionv1.Create, alice, nil, k, keywardv1alpha1.Finalizer)
	if want := map[string]string{keywardv1alpha1.AnnotationCreatedBy: "alice", "team": "a"}; !reflect.DeepEqual(k.Annotations, want) {
		t.Errorf("annotations after create by alice = %v, want %v", k.Annotations, want)
	}
	if !reflect.DeepEqual(k.Finalizers, []string{keywardv1alpha1.Finalizer}) {
		t.Errorf("finalizers = %v", k.Finalizers)
	}

	a := testgen.Application("ns", "acme", "things")
	a = defaulted(t, admissionv1.Create, robot, nil, a, "")
	if want := by(robot); !reflect.DeepEqual(a.Annotations, want) || len(a.Finalizers) != 0 {
		t.Errorf("after create by a ServiceAccount: annotations %v (want %v), finalizers %v", a.Annotations, want, a.Finalizers)
	}

	// An update that drops the annotations (a server-side apply of a
	// manifest without them) gets them back; one that changes them is left
	// for validation to refuse.
	dropped := a.DeepCopy()
	dropped.Annotations = map[string]string{"team": "b"}
	dropped = defaulted(t, admissionv1.Update, alice, a, dropped, "")
	if want := (map[string]string{"team": "b", keywardv1alpha1.AnnotationCreatedBy: robot.Username, keywardv1alpha1.AnnotationCreatedByUID: "robot-uid"}); !reflect.DeepEqual(dropped.Annotations, want) {
		t.Errorf("annotations after an update that dropped them = %v, want %v", dropped.Annotations, want)
	}
	changed := a.DeepCopy()
	changed.Annotations = by(alice)
	changed = defaulted(t, admissionv1.Update, alice, a, changed, "")
	if want := map[string]string{keywardv1alpha1.AnnotationCreatedBy: "alice", keywardv1alpha1.AnnotationCreatedByUID: "robot-uid"}; !reflect.DeepEqual(changed.Annotations, want) {
		t.Errorf("annotations after an update that changed them = %v, want %v", changed.Annotations, want)
	}
}
