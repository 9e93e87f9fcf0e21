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
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

// TestDeletingWhatHoldsKeysIsProtected: deleting an Application or a
// KeyGroup that holds a recently used key asks for the same confirmation
// as deleting the key: the Application's externalID, the KeyGroup's name.
func TestDeletingWhatHoldsKeysIsProtected(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ctx := context.Background()
	const annotation = "metadata.annotations[keyward.dev/confirm-delete]"
	ns := env.Namespace(t)
	create(t, in(ns, group(), app(), key("used"))...)
	waitKeyPhase(t, ns, "used", keywardv1alpha1.APIKeyActive)
	used(t, ns, "used", clock.Now().Add(-time.Hour))
	// The webhook reads keys from the manager's cache: wait for the use.
	testenv.Eventually(t, 30*time.Second, func() error {
		err := env.Client.Delete(ctx, in(ns, app())[0], client.DryRunAll)
		if err == nil {
			return fmt.Errorf("deleting the Application of a key used an hour ago was admitted")
		}
		return nil
	})

	rejected(t, env.Client.Delete(ctx, in(ns, app())[0]), annotation, "Required value",
		`KeyGroup "things" asks to confirm deleting keys used within 72h0m0s, and this Application holds a key last used at`,
		`set this annotation to the externalID of the Application`)
	rejected(t, env.Client.Delete(ctx, in(ns, group())[0]), annotation, "Required value",
		`and this KeyGroup holds a key last used at`, `set this annotation to the KeyGroup's name, "things"`)

	mustUpdate(t, in(ns, app())[0].(*keywardv1alpha1.Application), func(a *keywardv1alpha1.Application) {
		a.Annotations[keywardv1alpha1.AnnotationConfirmDelete] = "wrong"
	})
	rejected(t, env.Client.Delete(ctx, in(ns, app())[0]), annotation, "Invalid value", "must be the externalID of the Application")
	mustUpdate(t, in(ns, group())[0].(*keywardv1alpha1.KeyGroup), func(g *keywardv1alpha1.KeyGroup) {
		if g.Annotations == nil {
			g.Annotations = map[string]string{}
		}
		g.Annotations[keywardv1alpha1.AnnotationConfirmDelete] = "things"
	})
	if err := env.Client.Delete(ctx, in(ns, group())[0], client.DryRunAll); err != nil {
		t.Errorf("deleting the KeyGroup with its name confirmed: %v", err)
	}
	mustUpdate(t, in(ns, app())[0].(*keywardv1alpha1.Application), func(a *keywardv1alpha1.Application) {
		a.Annotations[keywardv1alpha1.AnnotationConfirmDelete] = "EUI-70B3D57E"
	})
	if err := env.Client.Delete(ctx, in(ns, app())[0]); err != nil {
		t.Errorf("deleting the Application with its externalID confirmed: %v", err)
	}

	// An Application whose keys were never used goes without asking.
	create(t, in(ns, testgen.Application("", "quiet", "things", testgen.WithExternalID("EUI-QUIET")), testgen.APIKey("", "idle", "quiet"))...)
	waitKeyPhase(t, ns, "idle", keywardv1alpha1.APIKeyActive)
	if err := env.Client.Delete(ctx, in(ns, testgen.Application("", "quiet", "things"))[0]); err != nil {
		t.Errorf("deleting an Application whose keys were never used: %v", err)
	}
}

// TestExternalIDIsOneCustomer: an externalID is unique among a KeyGroup's
// Applications and, once set, fixed.
func TestExternalIDIsOneCustomer(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ctx := context.Background()
	ns := env.Namespace(t)
	create(t, in(ns, group(), app())...)
	testenv.Eventually(t, 30*time.Second, func() error {
		err := env.Client.Create(ctx, in(ns, testgen.Application("", "copycat", "things", testgen.WithExternalID("EUI-70B3D57E")))[0], client.DryRunAll)
		if err == nil {
			return fmt.Errorf("a second Application with externalID EUI-70B3D57E was admitted")
		}
		return nil
	})
	rejected(t, env.Client.Create(ctx, in(ns, testgen.Application("", "copycat", "things", testgen.WithExternalID("EUI-70B3D57E")))[0]),
		"spec.externalID", `Invalid value: "EUI-70B3D57E": is already the externalID of Application "acme" of KeyGroup "things"`)

	// Another group may hold the same externalID: it is per group.
	create(t, in(ns, testgen.KeyGroup("", "other"), testgen.Application("", "elsewhere", "other", testgen.WithExternalID("EUI-70B3D57E")))...)

	// Set once: from empty to a value, then fixed.
	create(t, in(ns, testgen.Application("", "late", "things"))...)
	a := in(ns, testgen.Application("", "late", "things"))[0].(*keywardv1alpha1.Application)
	rejected(t, update(ctx, env.Client, a, func(a *keywardv1alpha1.Application) { a.Spec.ExternalID = "EUI-70B3D57E" }),
		"spec.externalID", "is already the externalID")
	mustUpdate(t, a, func(a *keywardv1alpha1.Application) { a.Spec.ExternalID = "EUI-LATE" })
	rejected(t, update(ctx, env.Client, a, func(a *keywardv1alpha1.Application) { a.Spec.ExternalID = "EUI-OTHER" }),
		"spec.externalID", `Forbidden: is set once and cannot change, since backends take it as the customer's identity; create a new Application for another customer (it is "EUI-LATE")`)
	waitAppActive(t, ns, "late")
	got := &keywardv1alpha1.Application{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), got); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, keywardv1alpha1.ConditionReady); c == nil || c.Status != "True" {
		t.Errorf("Application late not Ready: %+v", c)
	}
}

// TestKeySourceRangesWithinGroup: a key's own allowedSourceRanges must lie
// within its group's when the group sets any.
func TestKeySourceRangesWithinGroup(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ctx := context.Background()
	ns := env.Namespace(t)
	g := group()
	g.Spec.AllowedSourceRanges = []keywardv1alpha1.CIDR{"10.0.0.0/8", "2001:db8::/32"}
	create(t, in(ns, g, app())...)
	testenv.Eventually(t, 30*time.Second, func() error {
		return env.Client.Create(ctx, in(ns, key("inside", testgen.WithSourceRanges("10.1.0.0/16", "2001:db8:1::/48")))[0])
	})
	rejected(t, env.Client.Create(ctx, in(ns, key("outside", testgen.WithSourceRanges("10.1.0.0/16", "0.0.0.0/0")))[0]),
		"spec.allowedSourceRanges[1]", `Invalid value: "0.0.0.0/0": is not within the allowedSourceRanges of KeyGroup "things" (10.0.0.0/8, 2001:db8::/32)`)
	k := in(ns, key("inside"))[0].(*keywardv1alpha1.APIKey)
	rejected(t, update(ctx, env.Client, k, func(k *keywardv1alpha1.APIKey) {
		k.Spec.AllowedSourceRanges = []keywardv1alpha1.CIDR{"192.168.0.0/16"}
	}), "spec.allowedSourceRanges[0]", "is not within the allowedSourceRanges")
}

// TestKeywardFinalizerIsKeywards: the finalizer that deletes a key's hashed
// record cannot be removed while the key lives, and a key held in deletion
// by someone else's finalizer stops working all the same.
func TestKeywardFinalizerIsKeywards(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ctx := context.Background()
	ns := env.Namespace(t)
	create(t, in(ns, group(), app(), key("k"))...)
	k := waitKeyPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	if hashedSecret(t, k) == nil {
		t.Fatal("no hashed Secret")
	}
	for name, finalizers := range map[string][]string{
		"removed":  nil,
		"replaced": {"example.com/hold"},
	} {
		err := update(ctx, env.Client, k.DeepCopy(), func(k *keywardv1alpha1.APIKey) { k.Finalizers = finalizers })
		rejected(t, err, "metadata.finalizers", "keyward.dev/hashed-key is keyward's")
		t.Logf("%s: refused", name)
	}
	// Another finalizer beside keyward's is the owner's business; once the
	// key is deleted, its record goes although the key is still held.
	mustUpdate(t, k.DeepCopy(), func(k *keywardv1alpha1.APIKey) { k.Finalizers = append(k.Finalizers, "example.com/hold") })
	if err := env.Client.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if hashedSecret(t, k) != nil {
			return fmt.Errorf("the hashed Secret of a key being deleted is still there")
		}
		return nil
	})
	mustUpdate(t, k.DeepCopy(), func(k *keywardv1alpha1.APIKey) { k.Finalizers = nil })
}
