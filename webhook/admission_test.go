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

package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/grants"
	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

// ruleCase is one rule of DESIGN §3, broken through the API server: setup
// creates what the rule needs in ns, act makes the request that breaks it
// with the given options (plain, or server-side dry run).
type ruleCase struct {
	name  string
	setup func(t *testing.T, ns string)
	act   func(ctx context.Context, c client.Client, ns string, dryRun bool) error
	field string
	want  []string
}

func dry[T any](dryRun bool, opt T) []T {
	if dryRun {
		return []T{opt}
	}
	return nil
}

func createObj(obj client.Object) func(context.Context, client.Client, string, bool) error {
	return func(ctx context.Context, c client.Client, ns string, dryRun bool) error {
		o := obj.DeepCopyObject().(client.Object)
		o.SetNamespace(ns)
		return c.Create(ctx, o, dry(dryRun, client.CreateOption(client.DryRunAll))...)
	}
}

func updateObj[T client.Object](obj T, change func(T)) func(context.Context, client.Client, string, bool) error {
	return func(ctx context.Context, c client.Client, ns string, dryRun bool) error {
		o := obj.DeepCopyObject().(T)
		o.SetNamespace(ns)
		return update(ctx, c, o, change, dry(dryRun, client.UpdateOption(client.DryRunAll))...)
	}
}

// createYAML creates an object as kubectl would send it, with values that
// keyward's Go types cannot hold (a duration of "1d").
func createYAML(doc string) func(context.Context, client.Client, string, bool) error {
	return func(ctx context.Context, c client.Client, ns string, dryRun bool) error {
		objs, err := kube.DecodeYAML([]byte(doc))
		if err != nil || len(objs) != 1 {
			return fmt.Errorf("decoding %q: %d objects, %v", doc, len(objs), err)
		}
		objs[0].SetNamespace(ns)
		return c.Create(ctx, objs[0], dry(dryRun, client.CreateOption(client.DryRunAll))...)
	}
}

// group, app and key are the objects most cases start from.
func group(opts ...testgen.KeyGroupOption) *keywardv1alpha1.KeyGroup {
	return testgen.KeyGroup("", "things", opts...)
}

func app(opts ...testgen.ApplicationOption) *keywardv1alpha1.Application {
	return testgen.Application("", "acme", "things", append([]testgen.ApplicationOption{testgen.WithExternalID("EUI-70B3D57E")}, opts...)...)
}

func key(name string, opts ...testgen.APIKeyOption) *keywardv1alpha1.APIKey {
	return testgen.APIKey("", name, "acme", opts...)
}

func in(ns string, objs ...client.Object) []client.Object {
	for _, o := range objs {
		o.SetNamespace(ns)
	}
	return objs
}

// setupObjects creates objs in the test's namespace.
func setupObjects(objs ...func() client.Object) func(t *testing.T, ns string) {
	return func(t *testing.T, ns string) {
		for _, o := range objs {
			create(t, in(ns, o())...)
		}
	}
}

func groupObj(opts ...testgen.KeyGroupOption) func() client.Object {
	return func() client.Object { return group(opts...) }
}

func appObj(opts ...testgen.ApplicationOption) func() client.Object {
	return func() client.Object { return app(opts...) }
}

// keyObj is the key "k".
func keyObj(opts ...testgen.APIKeyOption) func() client.Object {
	return func() client.Object { return key("k", opts...) }
}

// TestRulesRejectedThroughAPIServer breaks each rule of DESIGN §3 through
// the API server, for real and with a server-side dry run, and checks that
// the answer names the field. Rules that the CRD's CEL validation already
// enforces are refused by the API server before the webhook is called; the
// webhook's copy of them is covered by the unit tests of validate.
func TestRulesRejectedThroughAPIServer(t *testing.T) {
	env.Need(t)
	t.Parallel()
	at := func(d time.Duration) testgen.APIKeyOption { return testgen.WithExpiry(clock.Now().Add(d)) }
	tests := []ruleCase{
		{
			name:  "KeyGroup keyPrefix is immutable (CEL)",
			setup: setupObjects(groupObj()),
			act:   updateObj(group(), func(g *keywardv1alpha1.KeyGroup) { g.Spec.KeyPrefix = "other" }),
			field: "spec.keyPrefix", want: []string{"Forbidden: field is immutable: keys already issued carry it"},
		},
		{
			name:  "KeyGroup scope paths must be ones the verifier can match",
			act:   createObj(group(testgen.WithScope("odd", nil, "/v1/del\x7f"))),
			field: "spec.scopes[2].rules[0].paths[0]", want: []string{"the verifier cannot match it", "not in normalised form"},
		},
		{
			name:  "Application keyGroup is immutable (CEL)",
			setup: setupObjects(groupObj(), appObj()),
			act:   updateObj(app(), func(a *keywardv1alpha1.Application) { a.Spec.KeyGroup = "other" }),
			field: "spec.keyGroup", want: []string{"Forbidden: field is immutable; create a new Application to move to another KeyGroup"},
		},
		{
			name:  "Application revoked is one-way (CEL)",
			setup: setupObjects(groupObj(), appObj(func(a *keywardv1alpha1.Application) { a.Spec.Revoked = true })),
			act:   updateObj(app(), func(a *keywardv1alpha1.Application) { a.Spec.Revoked = false }),
			field: "spec.revoked", want: []string{"spec.revoked: Forbidden: cannot be set back to false"},
		},
		{
			name: "Application maxApplications",
			setup: func(t *testing.T, ns string) {
				create(t, in(ns, group(testgen.WithLimits(1, 10)), app())...)
				waitAppActive(t, ns, "acme")
			},
			act:   createObj(testgen.Application("", "second", "things")),
			field: "spec.keyGroup", want: []string{`KeyGroup "things" already has 1/1 applications`},
		},
		{
			name:  "Application created-by is immutable",
			setup: setupObjects(groupObj(), appObj()),
			act: updateObj(app(), func(a *keywardv1alpha1.Application) {
				a.Annotations[keywardv1alpha1.AnnotationCreatedBy] = "someone-else"
			}),
			field: "metadata.annotations[keyward.dev/created-by]", want: []string{"cannot be changed"},
		},
		{
			// The mutating webhook looks the Application up before the
			// schema runs; a name that cannot be looked up is the schema's
			// to refuse, not an internal error.
			name:  "APIKey application that is not a name",
			setup: setupObjects(groupObj(), appObj()),
			act: createObj(key("k", func(k *keywardv1alpha1.APIKey) {
				k.Spec.Application = "../default/acme"
			})),
			field: "spec.application", want: []string{"Invalid value", "should match"},
		},
		{
			// status.rotation.lastRotateRequest echoes the value, and
			// kubectl prints status as it is.
			name:  "APIKey rotate value with a terminal escape",
			setup: setupObjects(groupObj(), appObj()),
			act: createObj(key("k", func(k *keywardv1alpha1.APIKey) {
				k.Annotations = map[string]string{keywardv1alpha1.AnnotationRotate: "\x1b]0;owned\x07"}
			})),
			field: "metadata.annotations[keyward.dev/rotate]", want: []string{"not a printable character", "use a timestamp"},
		},
		{
			name:  "APIKey application must not be revoked",
			setup: setupObjects(groupObj(), appObj(func(a *keywardv1alpha1.Application) { a.Spec.Revoked = true })),
			act:   createObj(key("k")),
			field: "spec.application", want: []string{`Application "acme" is revoked`},
		},
		{
			name:  "APIKey scopes must exist in the group",
			setup: setupObjects(groupObj(), appObj()),
			act:   createObj(key("k", testgen.WithScopes("read", "admin"))),
			field: "spec.scopes[1]", want: []string{`Unsupported value: "admin"`, `"read", "write"`},
		},
		{
			name:  "APIKey expiresAt is required under maxKeyLifetime",
			setup: setupObjects(groupObj(testgen.WithMaxKeyLifetime(720*time.Hour)), appObj()),
			act:   createObj(key("k")),
			field: "spec.expiresAt", want: []string{"Required value", "maxKeyLifetime 720h0m0s"},
		},
		{
			name:  "APIKey expiresAt within maxKeyLifetime",
			setup: setupObjects(groupObj(testgen.WithMaxKeyLifetime(720*time.Hour)), appObj()),
			act:   createObj(key("k", at(800*time.Hour))),
			field: "spec.expiresAt", want: []string{"is more than maxKeyLifetime 720h0m0s", "set it no later than"},
		},
		{
			name:  "APIKey rotation no more often than --min-rotation-every",
			setup: setupObjects(groupObj(), appObj()),
			act:   createObj(key("k", testgen.WithRotation(10*time.Minute, time.Minute))),
			field: "spec.rotation.every", want: []string{"is shorter than 1h0m0s", "--min-rotation-every"},
		},
		{
			name:  "APIKey rotation every written in days",
			setup: setupObjects(groupObj(), appObj()),
			act:   createYAML("{apiVersion: keyward.dev/v1alpha1, kind: APIKey, metadata: {name: k}, spec: {application: acme, scopes: [read], rotation: {every: 30d}}}"),
			field: "spec.rotation.every", want: []string{"must be a positive duration in hours, minutes or seconds, such as 2160h", "not 30d"},
		},
		{
			name:  "APIKey rotation without every",
			setup: setupObjects(groupObj(), appObj()),
			act:   createYAML("{apiVersion: keyward.dev/v1alpha1, kind: APIKey, metadata: {name: k}, spec: {application: acme, scopes: [read], rotation: {overlap: 1h}}}"),
			field: "spec.rotation.every", want: []string{"Required value"},
		},
		{
			name:  "KeyGroup maxKeyLifetime that is no duration",
			act:   createYAML("{apiVersion: keyward.dev/v1alpha1, kind: KeyGroup, metadata: {name: g}, spec: {maxKeyLifetime: xyz}}"),
			field: "spec.maxKeyLifetime", want: []string{"must be a positive duration in hours, minutes or seconds, such as 8760h", "not xyz"},
		},
		{
			name:  "APIKey rotation overlap not negative",
			setup: setupObjects(groupObj(), appObj()),
			act:   createObj(key("k", testgen.WithRotation(2*time.Hour, -time.Hour))),
			field: "spec.rotation.overlap", want: []string{`Invalid value: "-1h0m0s": must be a positive duration`},
		},
		{
			name:  "APIKey rotation overlap at least a minute",
			setup: setupObjects(groupObj(), appObj()),
			act:   createObj(key("k", testgen.WithRotation(2*time.Hour, time.Second))),
			field: "spec.rotation.overlap", want: []string{`Invalid value: "1s": is shorter than 1m0s`},
		},
		{
			name:  "APIKey rotation overlap shorter than every (CEL)",
			setup: setupObjects(groupObj(), appObj()),
			act:   createObj(key("k", testgen.WithRotation(2*time.Hour, 3*time.Hour))),
			field: "spec.rotation.overlap", want: []string{"overlap must be shorter than every"},
		},
		{
			name:  "APIKey rotation every + overlap within maxKeyLifetime",
			setup: setupObjects(groupObj(testgen.WithMaxKeyLifetime(720*time.Hour)), appObj()),
			act:   createObj(key("k", testgen.WithRotation(700*time.Hour, 48*time.Hour))),
			field: "spec.rotation.every", want: []string{"every + overlap (748h0m0s) is more than maxKeyLifetime 720h0m0s"},
		},
		{
			name:  "APIKey application is immutable (CEL)",
			setup: setupObjects(groupObj(), appObj(), keyObj()),
			act:   updateObj(key("k"), func(k *keywardv1alpha1.APIKey) { k.Spec.Application = "other" }),
			field: "spec.application", want: []string{"Forbidden: field is immutable; create a new APIKey for another application"},
		},
		{
			name:  "APIKey scopes are immutable (CEL)",
			setup: setupObjects(groupObj(), appObj(), keyObj()),
			act: updateObj(key("k"), func(k *keywardv1alpha1.APIKey) {
				k.Spec.Scopes = append(k.Spec.Scopes, "write")
			}),
			field: "spec.scopes", want: []string{"spec.scopes: Forbidden: field is immutable; create a new APIKey to change scopes"},
		},
		{
			name:  "APIKey secretName is immutable (CEL)",
			setup: setupObjects(groupObj(), appObj(), keyObj(testgen.WithSecretName("a"))),
			act:   updateObj(key("k"), func(k *keywardv1alpha1.APIKey) { k.Spec.SecretName = "b" }),
			field: "spec.secretName", want: []string{"Forbidden: field is immutable: the key was delivered to this Secret once"},
		},
		{
			name:  "APIKey revoked is one-way (CEL)",
			setup: setupObjects(groupObj(), appObj(), keyObj(func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true })),
			act:   updateObj(key("k"), func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = false }),
			field: "spec.revoked", want: []string{"spec.revoked: Forbidden: cannot be set back to false"},
		},
		{
			name:  "APIKey expiresAt only moves earlier (CEL)",
			setup: setupObjects(groupObj(), appObj(), keyObj(at(time.Hour))),
			act: updateObj(key("k"), func(k *keywardv1alpha1.APIKey) {
				later := metav1.NewTime(k.Spec.ExpiresAt.Add(time.Hour))
				k.Spec.ExpiresAt = &later
			}),
			field: "spec.expiresAt", want: []string{"spec.expiresAt: Forbidden: may move earlier, never later"},
		},
		{
			name:  "APIKey created-by is immutable",
			setup: setupObjects(groupObj(), appObj(), keyObj()),
			act: updateObj(key("k"), func(k *keywardv1alpha1.APIKey) {
				k.Annotations[keywardv1alpha1.AnnotationCreatedBy] = "someone-else"
			}),
			field: "metadata.annotations[keyward.dev/created-by]", want: []string{"cannot be changed"},
		},
		{
			name: "APIKey deletion of a recently used key needs confirmation",
			setup: func(t *testing.T, ns string) {
				create(t, in(ns, group(), app(), key("k"))...)
				used(t, ns, "k", clock.Now().Add(-time.Minute))
			},
			act: func(ctx context.Context, c client.Client, ns string, dryRun bool) error {
				return c.Delete(ctx, in(ns, key("k"))[0], dry(dryRun, client.DeleteOption(client.DryRunAll))...)
			},
			field: "metadata.annotations[keyward.dev/confirm-delete]", want: []string{"Required value", "last used at"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := env.Namespace(t)
			if tt.setup != nil {
				tt.setup(t, ns)
			}
			for _, dryRun := range []bool{true, false} {
				err := tt.act(context.Background(), env.Client, ns, dryRun)
				msg := rejected(t, err, tt.field, tt.want...)
				t.Logf("dry run %v: %s", dryRun, msg)
			}
		})
	}
}

// used records a last use of the key, as the verifier does.
func used(t *testing.T, ns, name string, when time.Time) {
	t.Helper()
	k := &keywardv1alpha1.APIKey{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(k.DeepCopy())
	last := metav1.NewTime(when)
	k.Status.LastUsedTime = &last
	if err := env.Client.Status().Patch(context.Background(), k, patch); err != nil {
		t.Fatalf("recording the last use of %s: %v", name, err)
	}
}

// TestEleventhKeyRejected: with maxKeysPerApplication 10, the 11th key of
// an application is refused at admission with the count in the message;
// once one is revoked, a new key is admitted and issued.
func TestEleventhKeyRejected(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ns := env.Namespace(t)
	create(t, in(ns, group(testgen.WithLimits(10, 10)), app())...)
	waitAppActive(t, ns, "acme")
	for i := range 10 {
		create(t, in(ns, key(fmt.Sprintf("k%d", i)))...)
	}
	for i := range 10 {
		waitKeyPhase(t, ns, fmt.Sprintf("k%d", i), keywardv1alpha1.APIKeyActive)
	}

	eleventh := in(ns, key("k10"))[0]
	err := env.Client.Create(context.Background(), eleventh.DeepCopyObject().(client.Object), client.DryRunAll)
	rejected(t, err, "spec.application", `Application "acme" already has 10/10 keys`, "revoked and expired keys do not count")
	err = env.Client.Create(context.Background(), eleventh.DeepCopyObject().(client.Object))
	msg := rejected(t, err, "spec.application", "10/10")
	t.Log(msg)

	mustUpdate(t, in(ns, key("k3"))[0].(*keywardv1alpha1.APIKey), func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true })
	// The manager's cache sees the revocation a moment later.
	testenv.Eventually(t, 30*time.Second, func() error {
		return env.Client.Create(context.Background(), eleventh.DeepCopyObject().(client.Object))
	})
	waitKeyPhase(t, ns, "k3", keywardv1alpha1.APIKeyRevoked)
	waitKeyPhase(t, ns, "k10", keywardv1alpha1.APIKeyActive)

	// Disabled keys still count.
	mustUpdate(t, in(ns, key("k4"))[0].(*keywardv1alpha1.APIKey), func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = true })
	waitKeyPhase(t, ns, "k4", keywardv1alpha1.APIKeyDisabled)
	rejected(t, env.Client.Create(context.Background(), in(ns, key("k11"))[0], client.DryRunAll), "spec.application", "10/10")
}

// TestRotationNeedsTheRequestersGrant: a rotation issues a new key of the
// key's scopes. A user who may edit APIKeys (and read the delivery Secret)
// but not grant those scopes is refused when asking for one, by the
// annotation or by spec.rotation, and told which permission is missing.
func TestRotationNeedsTheRequestersGrant(t *testing.T) {
	env.Need(t)
	t.Parallel()
	shippedRoles(t)
	ns := env.Namespace(t)
	create(t, in(ns, group(), app(), key("w", testgen.WithScopes("write")))...)
	waitKeyPhase(t, ns, "w", keywardv1alpha1.APIKeyActive)
	alice := as(t, "alice", "")
	bind(t, ns, "keyward-editor", aliceSubject)
	ctx := context.Background()
	k := in(ns, key("w"))[0].(*keywardv1alpha1.APIKey)

	var err error
	testenv.Eventually(t, 30*time.Second, func() error {
		err = update(ctx, alice, k, func(k *keywardv1alpha1.APIKey) {
			k.Annotations[keywardv1alpha1.AnnotationRotate] = "by-alice"
		})
		if apierrors.IsForbidden(err) && !strings.Contains(err.Error(), "admission webhook") {
			return err // not yet allowed to update APIKeys at all
		}
		return nil
	})
	rejected(t, err, "metadata.annotations[keyward.dev/rotate]",
		`Forbidden: a rotation issues a new key of the key's scopes, and user "alice" may not grant scope "write" of KeyGroup "things": needs verb "grant" on scopes.keyward.dev named "things.write"`)
	err = update(ctx, alice, k, func(k *keywardv1alpha1.APIKey) {
		k.Spec.Rotation = &keywardv1alpha1.APIKeyRotation{Every: metav1.Duration{Duration: 2 * time.Hour}}
	})
	rejected(t, err, "spec.rotation", `user "alice" may not grant scope "write"`)

	// Switching the key off needs no grant.
	if err := update(ctx, alice, k, func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = true }); err != nil {
		t.Errorf("alice may not disable the key: %v", err)
	}
}

// TestGrantNeedsRBAC: a user bound to the shipped keyward-editor role can
// create keys, but only with scopes they hold "grant" on; they are told
// which permission is missing. A Role granting one scope, or keyward-admin,
// gives it.
func TestGrantNeedsRBAC(t *testing.T) {
	env.Need(t)
	t.Parallel()
	shippedRoles(t)
	ns := env.Namespace(t)
	create(t, in(ns, group(), app())...)
	alice := as(t, "alice", "")
	bind(t, ns, "keyward-editor", aliceSubject)
	ctx := context.Background()

	// keyward-editor lets alice create keys (RBAC takes a moment to see the
	// binding), but grants no scope.
	var err error
	testenv.Eventually(t, 30*time.Second, func() error {
		err = alice.Create(ctx, in(ns, key("both", testgen.WithScopes("read", "write")))[0])
		if apierrors.IsForbidden(err) && !strings.Contains(err.Error(), "admission webhook") {
			return err // not yet allowed to create APIKeys at all
		}
		return nil
	})
	msg := rejected(t, err, "spec.scopes[0]",
		`spec.scopes[0]: Forbidden: user "alice" may not grant scope "read" of KeyGroup "things": needs verb "grant" on scopes.keyward.dev named "things.read" in namespace "`+ns+`"`)
	rejected(t, err, "spec.scopes[1]",
		`spec.scopes[1]: Forbidden: user "alice" may not grant scope "write" of KeyGroup "things": needs verb "grant" on scopes.keyward.dev named "things.write" in namespace "`+ns+`"`)
	t.Log(msg)

	// A Role that grants "things.read" only.
	create(t, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grant-things-read"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"keyward.dev"}, Resources: []string{"scopes"}, Verbs: []string{"grant"}, ResourceNames: []string{"things.read"},
		}},
	}, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grant-things-read"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "grant-things-read"},
		Subjects:   []rbacv1.Subject{aliceSubject},
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		return alice.Create(ctx, in(ns, key("reader", testgen.WithScopes("read")))[0])
	})
	rejected(t, alice.Create(ctx, in(ns, key("writer", testgen.WithScopes("write")))[0]), "spec.scopes[0]", `named "things.write"`)

	// A grant taken away is refused from then on: no earlier answer
	// stands in for the one asked now (the webhook and the controller
	// share their reviews only while one is on its way).
	readers := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grant-things-read"}}
	if err := env.Client.Delete(ctx, readers); err != nil {
		t.Fatal(err)
	}
	attempt := 0
	testenv.Eventually(t, 30*time.Second, func() error {
		// The API server's RBAC takes a moment to see the deletion.
		attempt++
		err := alice.Create(ctx, in(ns, key(fmt.Sprintf("reader-after-%d", attempt), testgen.WithScopes("read")))[0])
		if err != nil && strings.Contains(err.Error(), `named "things.read"`) {
			return nil
		}
		if err == nil {
			return errors.New("a key with scope read was admitted after alice's grant of it was taken away")
		}
		return err
	})
	create(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grant-things-read"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "grant-things-read"},
		Subjects:   []rbacv1.Subject{aliceSubject},
	})

	// keyward-admin grants every scope.
	bind(t, ns, "keyward-admin", aliceSubject)
	testenv.Eventually(t, 30*time.Second, func() error {
		return alice.Create(ctx, in(ns, key("writer", testgen.WithScopes("write")))[0])
	})
	k := waitKeyPhase(t, ns, "writer", keywardv1alpha1.APIKeyActive)
	if k.Status.CreatedBy != "alice" {
		t.Errorf("status.createdBy = %q, want alice", k.Status.CreatedBy)
	}

	// The grant is per namespace: the same user elsewhere holds nothing.
	other := env.Namespace(t)
	create(t, in(other, group(), app())...)
	bind(t, other, "keyward-editor", aliceSubject)
	testenv.Eventually(t, 30*time.Second, func() error {
		err := alice.Create(ctx, in(other, key("k"))[0])
		if err != nil && strings.Contains(err.Error(), `named "things.read" in namespace "`+other+`"`) {
			return nil
		}
		return fmt.Errorf("want the grant refused in %s, got %v", other, err)
	})
}

// TestDeletionProtection: deleting a key asks for keyward.dev/confirm-delete
// equal to the application's externalID, in the three modes of the group's
// deletionProtection.
func TestDeletionProtection(t *testing.T) {
	env.Need(t)
	ctx := context.Background()
	const annotation = "metadata.annotations[keyward.dev/confirm-delete]"
	del := func(ns, name string, opts ...client.DeleteOption) error {
		return env.Client.Delete(ctx, in(ns, key(name))[0], opts...)
	}
	confirm := func(ns, name, value string) {
		t.Helper()
		mustUpdate(t, in(ns, key(name))[0].(*keywardv1alpha1.APIKey), func(k *keywardv1alpha1.APIKey) {
			k.Annotations[keywardv1alpha1.AnnotationConfirmDelete] = value
		})
	}
	gone := func(ns, name string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &keywardv1alpha1.APIKey{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("APIKey %s/%s still there: %v", ns, name, err)
		})
	}

	t.Run("RecentlyUsed", func(t *testing.T) {
		ns := env.Namespace(t)
		create(t, in(ns, group(testgen.WithDeletionProtection(keywardv1alpha1.ConfirmRecentlyUsed, 72*time.Hour)), app(),
			key("used"), key("idle"), key("old"))...)
		used(t, ns, "used", clock.Now().Add(-time.Hour))
		used(t, ns, "old", clock.Now().Add(-73*time.Hour))

		rejected(t, del(ns, "used"), annotation, "Required value", `KeyGroup "things" asks to confirm deleting keys used within 72h0m0s`,
			`set this annotation to the externalID of Application "acme"`)
		rejected(t, del(ns, "used", client.DryRunAll), annotation, "Required value")
		confirm(ns, "used", "acme")
		rejected(t, del(ns, "used"), annotation, `Invalid value: "acme"`, `must be the externalID of Application "acme"`)
		confirm(ns, "used", "EUI-70B3D57E")
		if err := del(ns, "used"); err != nil {
			t.Fatalf("deleting with the externalID: %v", err)
		}
		gone(ns, "used")

		if err := del(ns, "idle"); err != nil {
			t.Errorf("deleting a key never used: %v", err)
		}
		if err := del(ns, "old"); err != nil {
			t.Errorf("deleting a key used before the window: %v", err)
		}

		// Once the window has passed, no confirmation.
		create(t, in(ns, key("later"))...)
		used(t, ns, "later", clock.Now().Add(-time.Hour))
		rejected(t, del(ns, "later"), annotation, "Required value")
		start := clock.Now()
		clock.Step(72 * time.Hour)
		t.Cleanup(func() { clock.SetTime(start) })
		if err := del(ns, "later"); err != nil {
			t.Errorf("deleting after the window passed: %v", err)
		}
		clock.SetTime(start)
		gone(ns, "later")
	})

	t.Run("Always", func(t *testing.T) {
		ns := env.Namespace(t)
		create(t, in(ns, group(testgen.WithDeletionProtection(keywardv1alpha1.ConfirmAlways, 72*time.Hour)), app(), key("unused"))...)
		rejected(t, del(ns, "unused"), annotation, `KeyGroup "things" asks to confirm deleting any of its keys`)
		confirm(ns, "unused", "EUI-70B3D57E")
		if err := del(ns, "unused"); err != nil {
			t.Fatalf("deleting with the externalID: %v", err)
		}
		gone(ns, "unused")
	})

	t.Run("Never", func(t *testing.T) {
		ns := env.Namespace(t)
		create(t, in(ns, group(testgen.WithDeletionProtection(keywardv1alpha1.ConfirmNever, 72*time.Hour)), app(), key("used"))...)
		used(t, ns, "used", clock.Now().Add(-time.Minute))
		if err := del(ns, "used"); err != nil {
			t.Fatalf("deleting in Never mode: %v", err)
		}
		gone(ns, "used")
	})

	t.Run("namespace deleted", func(t *testing.T) {
		ns := env.Namespace(t)
		create(t, in(ns, group(testgen.WithDeletionProtection(keywardv1alpha1.ConfirmAlways, 72*time.Hour)), app(), key("k"))...)
		rejected(t, del(ns, "k"), annotation, "asks to confirm")
		// Deleting the namespace is the confirmation: its keys go without
		// one (the local control plane has no namespace controller, so the
		// test deletes the key itself, as that controller would).
		if err := env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		if err := del(ns, "k"); err != nil {
			t.Fatalf("deleting a key of a namespace being deleted: %v", err)
		}
	})
}

// TestCreatedByCannotBeForged: the creator annotation is what the API
// server authenticated, whatever the request said, and cannot be changed
// afterwards; a server-side apply that drops it does not lose it.
func TestCreatedByCannotBeForged(t *testing.T) {
	env.Need(t)
	t.Parallel()
	shippedRoles(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	create(t, in(ns, group())...)
	bind(t, ns, "keyward-admin", aliceSubject)
	alice := as(t, "alice", "")

	forged := app()
	forged.Namespace = ns
	forged.Annotations = map[string]string{
		keywardv1alpha1.AnnotationCreatedBy:    "system:serviceaccount:kube-system:root",
		keywardv1alpha1.AnnotationCreatedByUID: "1234",
	}
	testenv.Eventually(t, 30*time.Second, func() error { return alice.Create(ctx, forged.DeepCopy()) })
	a := &keywardv1alpha1.Application{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(forged), a); err != nil {
		t.Fatal(err)
	}
	if got := a.Annotations[keywardv1alpha1.AnnotationCreatedBy]; got != "alice" {
		t.Errorf("created-by = %q, want alice", got)
	}
	if got, ok := a.Annotations[keywardv1alpha1.AnnotationCreatedByUID]; ok {
		t.Errorf("created-by-uid = %q, want none for a user", got)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(forged), a); err != nil {
			return err
		}
		if a.Status.CreatedBy != "alice" {
			return fmt.Errorf("status.createdBy = %q, want alice", a.Status.CreatedBy)
		}
		return nil
	})

	// Changing it is refused, for the creator as for an admin.
	for _, c := range []client.Client{alice, env.Client} {
		err := update(ctx, c, a.DeepCopy(), func(a *keywardv1alpha1.Application) {
			a.Annotations[keywardv1alpha1.AnnotationCreatedBy] = "bob"
		})
		rejected(t, err, "metadata.annotations[keyward.dev/created-by]", "is set by keyward when the object is created and cannot be changed")
	}

	// A server-side apply of the manifest as first written, without the
	// annotation the webhook added, keeps it.
	applied := client.ObjectKey{Namespace: ns, Name: "applied"}
	for _, description := range []string{"v1", "v2"} {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": keywardv1alpha1.GroupVersion.String(),
			"kind":       "Application",
			"metadata":   map[string]any{"namespace": ns, "name": "applied"},
			"spec":       map[string]any{"keyGroup": "things", "description": description},
		}}
		if err := alice.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("gitops"), client.ForceOwnership); err != nil {
			t.Fatalf("server-side apply %s: %v", description, err)
		}
	}
	if err := env.Client.Get(ctx, applied, a); err != nil {
		t.Fatal(err)
	}
	if got := a.Annotations[keywardv1alpha1.AnnotationCreatedBy]; got != "alice" || a.Spec.Description != "v2" {
		t.Errorf("after two server-side applies: created-by %q (want alice), description %q", got, a.Spec.Description)
	}

	// An APIKey created by a ServiceAccount records it, with its UID, and
	// stops working when the ServiceAccount is deleted.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "robot"}}
	create(t, sa)
	saUser := "system:serviceaccount:" + ns + ":robot"
	bind(t, ns, "keyward-admin", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "robot"})
	robot := as(t, saUser, string(sa.UID), "system:serviceaccounts", "system:serviceaccounts:"+ns)
	impostor := as(t, saUser, "not-the-uid", "system:serviceaccounts", "system:serviceaccounts:"+ns)
	k := in(ns, key("robot-key"))[0].(*keywardv1alpha1.APIKey)
	k.Annotations = map[string]string{keywardv1alpha1.AnnotationCreatedBy: "alice"}
	testenv.Eventually(t, 30*time.Second, func() error { return robot.Create(ctx, k) })
	if err := impostor.Create(ctx, in(ns, key("impostor-key"))[0]); err != nil {
		t.Fatal(err)
	}
	k = waitKeyPhase(t, ns, "robot-key", keywardv1alpha1.APIKeyActive)
	if k.Annotations[keywardv1alpha1.AnnotationCreatedBy] != saUser || k.Annotations[keywardv1alpha1.AnnotationCreatedByUID] != string(sa.UID) || k.Status.CreatedBy != saUser {
		t.Errorf("creator of a ServiceAccount's key: annotations %v, status.createdBy %q", k.Annotations, k.Status.CreatedBy)
	}
	if len(k.Finalizers) != 1 || k.Finalizers[0] != keywardv1alpha1.Finalizer {
		t.Errorf("finalizers = %v, want the one the mutating webhook adds", k.Finalizers)
	}
	// A key whose recorded UID is not the ServiceAccount's was created by
	// another ServiceAccount of that name: it never works.
	imp := waitKeyPhase(t, ns, "impostor-key", keywardv1alpha1.APIKeyRevoked)
	if c := readyReason(imp); c != "CreatorDeleted" {
		t.Errorf("impostor key: reason %q, want CreatorDeleted", c)
	}

	if err := env.Client.Delete(ctx, sa); err != nil {
		t.Fatal(err)
	}
	k = waitKeyPhase(t, ns, "robot-key", keywardv1alpha1.APIKeyRevoked)
	if c := readyReason(k); c != "CreatorDeleted" {
		t.Errorf("reason %q, want CreatorDeleted", c)
	}
}

func readyReason(k *keywardv1alpha1.APIKey) string {
	for _, c := range k.Status.Conditions {
		if c.Type == keywardv1alpha1.ConditionReady {
			return c.Reason
		}
	}
	return ""
}

// TestKeyBeforeItsApplication applies keys before their Application, as
// GitOps tools do when both arrive in one revision: admission lets them
// through, recording who created them, and the controller checks the grant
// of their scopes for that user once the Application exists.
func TestKeyBeforeItsApplication(t *testing.T) {
	env.Need(t)
	t.Parallel()
	shippedRoles(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	create(t, in(ns, group())...)
	bind(t, ns, "keyward-editor", aliceSubject) // keys, but no scope grants
	alice := as(t, "alice", "")
	forged := func(k *keywardv1alpha1.APIKey) {
		k.Annotations = map[string]string{keywardv1alpha1.AnnotationGrantCheck: `{"username":"root","groups":["system:masters"]}`}
	}

	early := testgen.APIKey(ns, "early", "acme", testgen.WithScopes("read"), forged)
	testenv.Eventually(t, 30*time.Second, func() error { return alice.Create(ctx, early.DeepCopy()) })
	k := &keywardv1alpha1.APIKey{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(early), k); err != nil {
		t.Fatal(err)
	}
	user, err := grants.ParseIdentity(k.Annotations[keywardv1alpha1.AnnotationGrantCheck])
	if err != nil || user.Username != "alice" {
		t.Fatalf("grant-check records %q (%v), want alice", k.Annotations[keywardv1alpha1.AnnotationGrantCheck], err)
	}
	for _, c := range []client.Client{alice, env.Client} {
		err := update(ctx, c, k.DeepCopy(), func(k *keywardv1alpha1.APIKey) {
			k.Annotations[keywardv1alpha1.AnnotationGrantCheck] = `{"username":"root"}`
		})
		rejected(t, err, "metadata.annotations[keyward.dev/grant-check]", "is set by keyward when the key is created and cannot be changed")
	}

	// The Application arrives; alice may not grant "read": Rejected.
	// (Created by alice too: a key created before its Application is
	// issued only when its creator created the Application.)
	if err := alice.Create(ctx, in(ns, app())[0]); err != nil {
		t.Fatal(err)
	}
	reason := func(name string, want keywardv1alpha1.APIKeyPhase) string {
		var msg string
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
				return err
			}
			if k.Status.Phase != want {
				return fmt.Errorf("APIKey %s is %q, want %q", name, k.Status.Phase, want)
			}
			c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady)
			msg = c.Reason + ": " + c.Message
			return nil
		})
		return msg
	}
	got := reason("early", keywardv1alpha1.APIKeyRejected)
	if want := `ScopeNotGranted: user "alice", who created the key, may not grant scope "read" of KeyGroup things: needs verb "grant" on scopes.keyward.dev named "things.read" in namespace "` + ns + `"`; !strings.HasPrefix(got, want) {
		t.Errorf("Ready = %q, want it to start with %q", got, want)
	}
	if k.Status.KeyID != "" {
		t.Errorf("a key whose scope was not granted was issued (%s)", k.Status.KeyID)
	}

	// With the grant, a key applied before its Application is issued.
	create(t, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grant-things-read"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"keyward.dev"}, Resources: []string{"scopes"}, Verbs: []string{"grant"}, ResourceNames: []string{"things.read"}}},
	}, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grant-things-read"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "grant-things-read"},
		Subjects:   []rbacv1.Subject{aliceSubject},
	})
	if err := alice.Create(ctx, testgen.APIKey(ns, "early-granted", "second", testgen.WithScopes("read"))); err != nil {
		t.Fatal(err)
	}
	if err := alice.Create(ctx, testgen.Application(ns, "second", "things")); err != nil {
		t.Fatal(err)
	}
	reason("early-granted", keywardv1alpha1.APIKeyActive)

	// Nor when someone else creates the Application: whoever creates it
	// chooses the KeyGroup the key is minted for.
	testenv.Eventually(t, 30*time.Second, func() error {
		return alice.Create(ctx, testgen.APIKey(ns, "early-other", "third", testgen.WithScopes("read")))
	})
	create(t, testgen.Application(ns, "third", "things"))
	if got := reason("early-other", keywardv1alpha1.APIKeyRejected); !strings.Contains(got, `the key was created by "alice" before Application third existed, and the Application was then created by`) {
		t.Errorf("Ready = %q, want the creator of the Application named", got)
	}

	// Once the Application exists, admission checks the grant itself, and
	// still records the creator, whatever the request carried, and binds
	// the key to the Application and KeyGroup it is admitted under.
	late := testgen.APIKey(ns, "late", "acme", testgen.WithScopes("read"), forged)
	testenv.Eventually(t, 30*time.Second, func() error { return alice.Create(ctx, late.DeepCopy()) })
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(late), k); err != nil {
		t.Fatal(err)
	}
	if user, err := grants.ParseIdentity(k.Annotations[keywardv1alpha1.AnnotationGrantCheck]); err != nil || user.Username != "alice" {
		t.Errorf("grant-check of a key created after its Application records %q (%v), want alice", k.Annotations[keywardv1alpha1.AnnotationGrantCheck], err)
	}
	a, g := &keywardv1alpha1.Application{}, &keywardv1alpha1.KeyGroup{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme"}, a); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: string(a.Spec.KeyGroup)}, g); err != nil {
		t.Fatal(err)
	}
	if got := k.Annotations[keywardv1alpha1.AnnotationApplicationUID]; got != string(a.UID) {
		t.Errorf("application-uid = %q, want %q", got, a.UID)
	}
	if got := k.Annotations[keywardv1alpha1.AnnotationKeyGroupUID]; got != string(g.UID) {
		t.Errorf("keygroup-uid = %q, want %q", got, g.UID)
	}
}
