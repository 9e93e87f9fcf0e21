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
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

// grantScope lets subject grant the scopes named "<group>.<scope>" in ns.
func grantScope(t *testing.T, ns string, subject rbacv1.Subject, names ...string) {
	t.Helper()
	name := "grant-" + strings.ReplaceAll(strings.Join(names, "-"), ".", "-")
	create(t, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"keyward.dev"}, Resources: []string{"scopes"}, Verbs: []string{"grant"}, ResourceNames: names}},
	}, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	})
}

// waitKeyReason waits until the key's Ready condition has reason.
func waitKeyReason(t *testing.T, ns, name string, phase keywardv1alpha1.APIKeyPhase, reason string) *keywardv1alpha1.APIKey {
	t.Helper()
	k := &keywardv1alpha1.APIKey{}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
			return err
		}
		c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady)
		if k.Status.Phase != phase || c == nil || c.Reason != reason {
			return fmt.Errorf("APIKey %s/%s: phase %q (%+v), want %q with reason %s", ns, name, k.Status.Phase, c, phase, reason)
		}
		return nil
	})
	return k
}

// hashedSecret reads the hashed Secret of k, nil if there is none.
func hashedSecret(t *testing.T, k *keywardv1alpha1.APIKey) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: record.SecretName(string(k.UID))}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recreateApplication deletes the Application acme as c and creates it again,
// in group.
func recreateApplication(t *testing.T, c client.Client, ns, group string) {
	t.Helper()
	ctx := context.Background()
	old := &keywardv1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}}
	if err := c.Delete(ctx, old); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(old), &keywardv1alpha1.Application{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("Application %s/acme still there (%v)", ns, err)
	})
	if err := c.Create(ctx, testgen.Application(ns, "acme", group)); err != nil {
		t.Fatal(err)
	}
}

// TestReplacedApplicationNeverInheritsKeys is the first bypass of the
// security issue: a tenant who may grant scope "read" of group staging only
// gets a key admitted against staging, keeps it from being minted (a Secret
// in the way of its delivery Secret), replaces its Application with one of
// group production and lets the key be minted. The key is bound to the
// Application and KeyGroup it was admitted under: it is Rejected, never
// issued; and the controller's own grant check, against the group it would
// mint for, would have refused it too. A key already minted is not moved
// either.
func TestReplacedApplicationNeverInheritsKeys(t *testing.T) {
	env.Need(t)
	t.Parallel()
	shippedRoles(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	create(t, testgen.KeyGroup(ns, "staging"), testgen.KeyGroup(ns, "production"))
	bind(t, ns, "keyward-editor", aliceSubject)
	grantScope(t, ns, aliceSubject, "staging.read")
	alice := as(t, "alice", "")

	testenv.Eventually(t, 30*time.Second, func() error { return alice.Create(ctx, testgen.Application(ns, "acme", "staging")) })
	waitAppActive(t, ns, "acme")

	t.Run("before it is minted", func(t *testing.T) {
		blocker := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "blocked-key"}}
		create(t, blocker)
		testenv.Eventually(t, 30*time.Second, func() error {
			return alice.Create(ctx, testgen.APIKey(ns, "blocked", "acme", testgen.WithScopes("read")))
		})
		waitKeyReason(t, ns, "blocked", keywardv1alpha1.APIKeyPending, "DeliverySecretConflict")

		recreateApplication(t, alice, ns, "production")
		if err := env.Client.Delete(ctx, blocker); err != nil {
			t.Fatal(err)
		}
		k := waitKeyReason(t, ns, "blocked", keywardv1alpha1.APIKeyRejected, "ApplicationReplaced")
		if k.Status.KeyID != "" || hashedSecret(t, k) != nil {
			t.Errorf("the key was issued (key id %q) for the replaced Application", k.Status.KeyID)
		}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(blocker), &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Errorf("a delivery Secret was written for a key of the replaced Application (%v)", err)
		}
	})

	t.Run("once minted", func(t *testing.T) {
		// The Application is production's now: make it staging's again,
		// with a key minted under it.
		recreateApplication(t, alice, ns, "staging")
		waitAppActive(t, ns, "acme")
		testenv.Eventually(t, 30*time.Second, func() error {
			return alice.Create(ctx, testgen.APIKey(ns, "minted", "acme", testgen.WithScopes("read")))
		})
		k := waitKeyPhase(t, ns, "minted", keywardv1alpha1.APIKeyActive)
		before := hashedSecret(t, k)
		if string(before.Data[record.DataKeyGroup]) != "staging" {
			t.Fatalf("minted for group %q, want staging", before.Data[record.DataKeyGroup])
		}

		// The controller sees the Application gone (ApplicationNotFound)
		// or, if it sees the new one first, replaced: Rejected either way.
		recreateApplication(t, alice, ns, "production")
		k = waitKeyPhase(t, ns, "minted", keywardv1alpha1.APIKeyRejected)
		c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady)
		if c.Reason != "ApplicationNotFound" && c.Reason != "ApplicationReplaced" {
			t.Errorf("Rejected for %s, want ApplicationNotFound or ApplicationReplaced", c.Reason)
		}
		// Rejected for good: the message, kept from then on, must read true
		// while an Application of that name exists again.
		if strings.Contains(c.Message, "does not exist") || !strings.Contains(c.Message, "create a new APIKey") {
			t.Errorf("Ready message %q: the Application exists again and the key stays dead", c.Message)
		}
		after := hashedSecret(t, k)
		if got := record.State(after.Data[record.DataState]); got != record.StateRejected {
			t.Errorf("hashed record state %q, want rejected: the key still verifies", got)
		}
		if got := string(after.Data[record.DataKeyGroup]); got != "staging" {
			t.Errorf("hashed record moved to group %q", got)
		}
		if string(after.Data[record.DataDigest]) != string(before.Data[record.DataDigest]) {
			t.Error("the key was minted again")
		}
	})
}

// TestReplacedKeyGroupNeverInheritsKeys: a key admitted under a KeyGroup
// that is deleted and created again under the same name before the key is
// minted is Rejected, not issued under the new group.
func TestReplacedKeyGroupNeverInheritsKeys(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ctx := context.Background()
	ns := env.Namespace(t)
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	waitAppActive(t, ns, "acme")
	blocker := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "k-key"}}
	create(t, blocker, testgen.APIKey(ns, "k", "acme"))
	k := waitKeyReason(t, ns, "k", keywardv1alpha1.APIKeyPending, "DeliverySecretConflict")
	if k.Annotations[keywardv1alpha1.AnnotationKeyGroupUID] == "" {
		t.Fatal("the key was admitted without keyward.dev/keygroup-uid")
	}

	if err := env.Client.Delete(ctx, testgen.KeyGroup(ns, "things")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "things"}, &keywardv1alpha1.KeyGroup{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("KeyGroup still there (%v)", err)
		}
		return nil
	})
	create(t, testgen.KeyGroup(ns, "things", testgen.WithScope("admin", nil, "/*")))
	if err := env.Client.Delete(ctx, blocker); err != nil {
		t.Fatal(err)
	}
	k = waitKeyReason(t, ns, "k", keywardv1alpha1.APIKeyRejected, "KeyGroupReplaced")
	if k.Status.KeyID != "" || hashedSecret(t, k) != nil {
		t.Errorf("the key was issued (key id %q) under the replaced KeyGroup", k.Status.KeyID)
	}
}

// TestKeysMintedBeforeBindingAreBound: a hashed record written before keys
// were bound by UID (no application-uid, keygroup-uid) is bound to the
// parents it names, without minting the key again.
func TestKeysMintedBeforeBindingAreBound(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ctx := context.Background()
	ns := env.Namespace(t)
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"), testgen.APIKey(ns, "k", "acme"))
	k := waitKeyPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	s := hashedSecret(t, k)
	digest := string(s.Data[record.DataDigest])

	// The record as the previous release wrote it.
	patch := client.MergeFrom(s.DeepCopy())
	delete(s.Data, record.DataApplicationUID)
	delete(s.Data, record.DataKeyGroupUID)
	if err := env.Client.Patch(ctx, s, patch); err != nil {
		t.Fatal(err)
	}
	a, g := &keywardv1alpha1.Application{}, &keywardv1alpha1.KeyGroup{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "acme"}, a); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "things"}, g); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		s = hashedSecret(t, k)
		if got, want := string(s.Data[record.DataApplicationUID]), string(a.UID); got != want {
			return fmt.Errorf("application-uid %q, want %q", got, want)
		}
		if got, want := string(s.Data[record.DataKeyGroupUID]), string(g.UID); got != want {
			return fmt.Errorf("keygroup-uid %q, want %q", got, want)
		}
		return nil
	})
	if string(s.Data[record.DataDigest]) != digest || record.State(s.Data[record.DataState]) != record.StateActive {
		t.Errorf("binding changed the key: state %q, digest changed %v", s.Data[record.DataState], string(s.Data[record.DataDigest]) != digest)
	}
}
