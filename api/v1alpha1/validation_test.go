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

package v1alpha1_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// cause is one expected rejection: the field path the API server names and
// a fragment of its message.
type cause struct {
	field   string
	message string
}

// causes returns the (field, message) pairs of an Invalid error, sorted.
func causes(t *testing.T, err error) []metav1.StatusCause {
	t.Helper()
	var status apierrors.APIStatus
	if !errors.As(err, &status) || !apierrors.IsInvalid(err) {
		t.Fatalf("want an Invalid error from the API server, got %v", err)
	}
	var cs []metav1.StatusCause
	for _, c := range status.Status().Details.Causes {
		// The API server adds this note whenever CEL rules were skipped
		// because the schema already failed; it names no field.
		if strings.Contains(c.Message, "some validation rules were not checked") {
			continue
		}
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Field < cs[j].Field })
	return cs
}

func expectRejected(t *testing.T, err error, want cause) {
	t.Helper()
	cs := causes(t, err)
	if len(cs) != 1 {
		t.Fatalf("want exactly one cause at %s, got %d: %v", want.field, len(cs), cs)
	}
	if cs[0].Field != want.field {
		t.Errorf("field: got %q, want %q (message %q)", cs[0].Field, want.field, cs[0].Message)
	}
	if !strings.Contains(cs[0].Message, want.message) {
		t.Errorf("message at %s: got %q, want it to contain %q", want.field, cs[0].Message, want.message)
	}
	if !strings.Contains(err.Error(), want.field) {
		t.Errorf("the error the user sees does not name %s: %q", want.field, err.Error())
	}
}

func TestCreateRejectsBadObjects(t *testing.T) {
	env.Need(t)
	ns := env.Namespace(t)
	long := strings.Repeat("x", 1025)

	tests := []struct {
		name string
		obj  client.Object
		want cause
	}{
		{
			name: "key prefix with upper case and punctuation",
			obj:  testgen.KeyGroup(ns, "g1", testgen.WithPrefix("Bad!")),
			want: cause{"spec.keyPrefix", `should match '^[a-z][a-z0-9]{1,7}$'`},
		},
		{
			name: "key prefix too long",
			obj:  testgen.KeyGroup(ns, "g2", testgen.WithPrefix("abcdefghi")),
			want: cause{"spec.keyPrefix", "should match"},
		},
		{
			name: "upper-case scope name",
			obj: testgen.KeyGroup(ns, "g3", func(g *keywardv1alpha1.KeyGroup) {
				g.Spec.Scopes[1].Name = "Write"
			}),
			want: cause{"spec.scopes[1].name", "should match"},
		},
		{
			name: "CIDR with an octet over 255",
			obj:  testgen.KeyGroup(ns, "g4", testgen.WithGroupSourceRanges("192.0.2.0/24", "10.0.0.300/8")),
			want: cause{"spec.allowedSourceRanges[1]", "must be a CIDR"},
		},
		{
			name: "negative limit",
			obj:  testgen.KeyGroup(ns, "g5", testgen.WithLimits(-1, 10)),
			want: cause{"spec.limits.maxApplications", "should be greater than or equal to 0"},
		},
		{
			name: "negative keys limit",
			obj:  testgen.KeyGroup(ns, "g6", testgen.WithLimits(10, -5)),
			want: cause{"spec.limits.maxKeysPerApplication", "should be greater than or equal to 0"},
		},
		{
			name: "over-long description",
			obj: testgen.KeyGroup(ns, "g7", func(g *keywardv1alpha1.KeyGroup) {
				g.Spec.Description = long
			}),
			want: cause{"spec.description", "may not be more than 1024"},
		},
		{
			name: "scope path with a wildcard in the middle",
			obj:  testgen.KeyGroup(ns, "g8", testgen.WithScope("mid", nil, "/v1/*/things")),
			want: cause{"spec.scopes[2].rules[0].paths[0]", "should match"},
		},
		{
			name: "scope path with a dot segment",
			obj:  testgen.KeyGroup(ns, "g9", testgen.WithScope("dots", nil, "/v1/../admin")),
			want: cause{"spec.scopes[2].rules[0].paths[0]", "should match"},
		},
		{
			name: "unknown HTTP method",
			obj:  testgen.KeyGroup(ns, "g10", testgen.WithScope("m", []string{"FETCH"}, "/v1")),
			want: cause{"spec.scopes[2].rules[0].methods[0]", "Unsupported value"},
		},
		{
			name: "negative key lifetime",
			obj:  testgen.KeyGroup(ns, "g11", testgen.WithMaxKeyLifetime(-time.Hour)),
			want: cause{"spec.maxKeyLifetime", "must be a positive duration"},
		},
		{
			name: "unknown deletion confirmation mode",
			obj: testgen.KeyGroup(ns, "g12", func(g *keywardv1alpha1.KeyGroup) {
				g.Spec.DeletionProtection.Confirm = "Sometimes"
			}),
			want: cause{"spec.deletionProtection.confirm", "Unsupported value"},
		},
		{
			name: "key group name that is not a DNS label",
			obj:  testgen.KeyGroup(ns, "devices.v2"),
			want: cause{"<nil>", "metadata.name must be a DNS label"},
		},
		{
			name: "unknown application type",
			obj: testgen.Application(ns, "a1", "g", func(a *keywardv1alpha1.Application) {
				a.Spec.Type = "Robot"
			}),
			want: cause{"spec.type", `supported values: "Application", "Customer"`},
		},
		{
			name: "application without key group",
			obj:  testgen.Application(ns, "a2", ""),
			want: cause{"spec.keyGroup", "should be at least 1 chars long"},
		},
		{
			name: "over-long display name",
			obj: testgen.Application(ns, "a3", "g", func(a *keywardv1alpha1.Application) {
				a.Spec.DisplayName = long
			}),
			want: cause{"spec.displayName", "may not be more than 256"},
		},
		{
			name: "external ID with a space",
			obj:  testgen.Application(ns, "a4", "g", testgen.WithExternalID("70B3 D57E")),
			want: cause{"spec.externalID", "should match"},
		},
		{
			name: "API key with no application",
			obj: testgen.APIKey(ns, "k1", "", func(k *keywardv1alpha1.APIKey) {
				k.Spec.Application = ""
			}),
			want: cause{"spec.application", "should be at least 1 chars long"},
		},
		{
			name: "API key with no scopes",
			obj:  testgen.APIKey(ns, "k2", "app", testgen.WithScopes()),
			want: cause{"spec.scopes", "Required value"},
		},
		{
			name: "API key with an upper-case scope",
			obj:  testgen.APIKey(ns, "k3", "app", testgen.WithScopes("Read")),
			want: cause{"spec.scopes[0]", "should match"},
		},
		{
			name: "API key with a bad source range",
			obj:  testgen.APIKey(ns, "k4", "app", testgen.WithSourceRanges("203.0.113.0/33")),
			want: cause{"spec.allowedSourceRanges[0]", "must be a CIDR"},
		},
		{
			name: "API key with a bad secret name",
			obj:  testgen.APIKey(ns, "k5", "app", testgen.WithSecretName("My_Secret")),
			want: cause{"spec.secretName", "should match"},
		},
		{
			name: "API key with an over-long description",
			obj: testgen.APIKey(ns, "k6", "app", func(k *keywardv1alpha1.APIKey) {
				k.Spec.Description = long
			}),
			want: cause{"spec.description", "may not be more than 1024"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := env.Client.Create(context.Background(), tt.obj)
			if err == nil {
				t.Fatalf("the API server accepted it; want rejection at %s", tt.want.field)
			}
			expectRejected(t, err, tt.want)
		})
	}
}

// A missing required object-typed field is reported by the API server
// without a length check; this proves the spec itself is required.
func TestCreateRejectsAPIKeyWithoutSpecApplication(t *testing.T) {
	env.Need(t)
	ns := env.Namespace(t)
	u := map[string]any{
		"apiVersion": "keyward.dev/v1alpha1",
		"kind":       "APIKey",
		"metadata":   map[string]any{"name": "k", "namespace": ns},
		"spec":       map[string]any{"scopes": []any{"read"}},
	}
	err := createUnstructured(env, u)
	if err == nil {
		t.Fatal("the API server accepted an APIKey without spec.application")
	}
	expectRejected(t, err, cause{"spec.application", "Required value"})
}

func TestUpdateRejectsForbiddenChanges(t *testing.T) {
	env.Need(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	expires := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)

	group := testgen.KeyGroup(ns, "g")
	app := testgen.Application(ns, "app", "g", func(a *keywardv1alpha1.Application) { a.Spec.Revoked = true })
	key := testgen.APIKey(ns, "key", "app", testgen.WithExpiry(expires), func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true })
	for _, o := range []client.Object{group, app, key} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("creating %T: %v", o, err)
		}
	}

	tests := []struct {
		name   string
		obj    client.Object
		mutate func()
		want   cause
	}{
		{"key prefix", group, func() { group.Spec.KeyPrefix = "other" }, cause{"spec.keyPrefix", "field is immutable: keys already issued carry it; create a new KeyGroup"}},
		{"application key group", app, func() { app.Spec.KeyGroup = "other" }, cause{"spec.keyGroup", "field is immutable; create a new Application"}},
		{"application un-revoked", app, func() { app.Spec.Revoked = false }, cause{"spec.revoked", "cannot be set back to false; create a new Application"}},
		{"key application", key, func() { key.Spec.Application = "other" }, cause{"spec.application", "field is immutable; create a new APIKey"}},
		{"key scopes", key, func() { key.Spec.Scopes = append(key.Spec.Scopes, "write") }, cause{"spec.scopes", "field is immutable; create a new APIKey to change scopes"}},
		{"key un-revoked", key, func() { key.Spec.Revoked = false }, cause{"spec.revoked", "cannot be set back to false; create a new APIKey"}},
		{"key expiry later", key, func() { t := metav1.NewTime(expires.Add(time.Hour)); key.Spec.ExpiresAt = &t }, cause{"spec.expiresAt", "may move earlier, never later"}},
		{"key expiry removed", key, func() { key.Spec.ExpiresAt = nil }, cause{"spec.expiresAt", "may move earlier, never later or away"}},
		{"key secret name", key, func() { key.Spec.SecretName = "elsewhere" }, cause{"spec.secretName", "field is immutable: the key was delivered to this Secret once"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh := tt.obj.DeepCopyObject().(client.Object)
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(tt.obj), fresh); err != nil {
				t.Fatal(err)
			}
			// Reset the shared object to what the server holds, then change it.
			switch o := tt.obj.(type) {
			case *keywardv1alpha1.KeyGroup:
				*o = *fresh.(*keywardv1alpha1.KeyGroup)
			case *keywardv1alpha1.Application:
				*o = *fresh.(*keywardv1alpha1.Application)
			case *keywardv1alpha1.APIKey:
				*o = *fresh.(*keywardv1alpha1.APIKey)
			}
			tt.mutate()
			err := env.Client.Update(ctx, tt.obj)
			if err == nil {
				t.Fatalf("the API server accepted the change; want rejection at %s", tt.want.field)
			}
			expectRejected(t, err, tt.want)
			// As DESIGN's example has it: "spec.scopes: Forbidden: field is
			// immutable; create a new APIKey to change scopes".
			if want := tt.want.field + ": Forbidden: "; !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not read %q...: %v", want, err)
			}
		})
	}

	t.Run("allowed changes are accepted", func(t *testing.T) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), key); err != nil {
			t.Fatal(err)
		}
		earlier := metav1.NewTime(expires.Add(-time.Hour))
		key.Spec.ExpiresAt = &earlier
		key.Spec.Description = "rotated in January"
		key.Spec.Disabled = true
		key.Spec.AllowedSourceRanges = []keywardv1alpha1.CIDR{"2001:db8::/32"}
		if err := env.Client.Update(ctx, key); err != nil {
			t.Fatalf("moving expiresAt earlier and editing description, disabled and source ranges: %v", err)
		}
	})
}

func TestDefaults(t *testing.T) {
	env.Need(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	g := &keywardv1alpha1.KeyGroup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bare"}}
	if err := env.Client.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	if g.Spec.KeyPrefix != "kw" {
		t.Errorf("keyPrefix default: got %q, want kw", g.Spec.KeyPrefix)
	}
	if g.MaxApplications() != 10 || g.MaxKeysPerApplication() != 10 || g.Spec.Limits.MaxApplications == nil {
		t.Errorf("limits default: got %+v, want 10 and 10", g.Spec.Limits)
	}
	if g.Spec.DeletionProtection.Confirm != keywardv1alpha1.ConfirmRecentlyUsed || g.Spec.DeletionProtection.RecentUseWindow.Duration != 72*time.Hour {
		t.Errorf("deletionProtection default: got %+v, want RecentlyUsed and 72h", g.Spec.DeletionProtection)
	}
	a := testgen.Application(ns, "a", "bare", func(a *keywardv1alpha1.Application) { a.Spec.Type = "" })
	if err := env.Client.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	if a.Spec.Type != keywardv1alpha1.ApplicationTypeApplication {
		t.Errorf("type default: got %q, want Application", a.Spec.Type)
	}
}
