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

package controllers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/internal/testgen"
)

// dieAtStatus makes the manager's APIKey status writes fail, as if the
// process died right after writing the hashed Secret; died is closed at the
// first attempt.
func dieAtStatus(died chan struct{}) managerOption {
	var once sync.Once
	return func(o *manager.Options) {
		inner := o.NewClient
		o.NewClient = func(cfg *rest.Config, opts client.Options) (client.Client, error) {
			c, err := inner(cfg, opts)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
					if _, ok := obj.(*keywardv1alpha1.APIKey); ok && sub == "status" {
						once.Do(func() { close(died) })
						return errors.New("killed before the status write")
					}
					return c.SubResource(sub).Patch(ctx, obj, p, opts...)
				},
			}), nil
		}
	}
}

// keyMaterial checks that a key has exactly one hashed Secret and one
// delivery Secret and that they hold the same key; it returns the digest.
func keyMaterial(t *testing.T, ops string, k *keywardv1alpha1.APIKey) string {
	t.Helper()
	var hashed corev1.SecretList
	if err := env.Client.List(context.Background(), &hashed, client.InNamespace(ops),
		client.MatchingLabels{record.LabelAPIKey: k.Name, record.LabelNamespace: k.Namespace}); err != nil {
		t.Fatal(err)
	}
	if len(hashed.Items) != 1 {
		t.Fatalf("%s has %d hashed Secrets, want 1", k.Name, len(hashed.Items))
	}
	delivery := deliverySecret(t, k)
	if delivery == nil {
		t.Fatalf("%s has no delivery Secret", k.Name)
	}
	sum := sha256.Sum256(delivery.Data[record.DeliveryAPIKey])
	if got := string(hashed.Items[0].Data[record.DataDigest]); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("%s: the hashed Secret's digest is not the delivered key's: a second key was minted", k.Name)
	}
	return string(hashed.Items[0].Data[record.DataDigest])
}

func TestKilledBetweenHashedSecretAndStatus(t *testing.T) {
	ops, ns := env.Namespace(t), env.Namespace(t)
	died := make(chan struct{})
	m := startManager(t, ops, []string{ns}, dieAtStatus(died))
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	waitAppPhase(t, ns, "acme", keywardv1alpha1.ApplicationActive)
	create(t, testgen.APIKey(ns, "k", "acme"))
	select {
	case <-died:
	case <-time.After(30 * time.Second):
		t.Fatal("the manager never got to the status write")
	}
	m.stop()
	k := getKey(t, ns, "k")
	if k.Status.Phase != "" {
		t.Fatalf("the status was written (%s): the crash came too late to prove anything", k.Status.Phase)
	}
	digest := keyMaterial(t, ops, k)

	startManager(t, ops, []string{ns})
	k = waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	if got := keyMaterial(t, ops, k); got != digest {
		t.Errorf("the digest changed across the crash")
	}
}

// TestLeaderHandoverMidIssuance runs two managers with leader election and
// stops the leader while keys are being issued: the other takes over, and
// every key ends with one hashed Secret holding the delivered key.
func TestLeaderHandoverMidIssuance(t *testing.T) {
	ops, ns := env.Namespace(t), env.Namespace(t)
	elect := func(o *manager.Options) {
		o.LeaderElection = true
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 3*time.Second, 2*time.Second, 200*time.Millisecond
	}
	first := startManager(t, ops, []string{ns}, elect)
	create(t, testgen.KeyGroup(ns, "things", testgen.WithLimits(10, 100)), testgen.Application(ns, "acme", "things"))
	waitAppPhase(t, ns, "acme", keywardv1alpha1.ApplicationActive) // the first one leads
	second := startManager(t, ops, []string{ns}, elect)

	const n = 30
	for i := range n {
		create(t, testgen.APIKey(ns, fmt.Sprintf("k-%02d", i), "acme"))
		if i == n/3 {
			first.stop() // mid-issuance, leadership released
		}
	}
	for i := range n {
		k := waitPhase(t, ns, fmt.Sprintf("k-%02d", i), keywardv1alpha1.APIKeyActive)
		keyMaterial(t, ops, k)
	}
	if second.writes.Load() == 0 {
		t.Errorf("the second manager wrote nothing: no handover happened")
	}
	t.Logf("writes: first manager %d, second %d", first.writes.Load(), second.writes.Load())
}
