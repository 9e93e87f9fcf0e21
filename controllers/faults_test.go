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
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/controllers"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
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
	env.Need(t)
	t.Parallel()
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
	env.Need(t)
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

// denyDeliverySecrets makes the API server refuse, through a
// ValidatingAdmissionPolicy, every keyward Secret created in namespace ns,
// with a message that echoes the key it was given. It returns a function
// that lifts the refusal.
func denyDeliverySecrets(t *testing.T, ns string) (lift func()) {
	t.Helper()
	return denySecrets(t, ns, admissionregistrationv1.Create, admissionregistrationv1.Validation{
		Expression: `!has(object.metadata.labels) || !('app.kubernetes.io/managed-by' in object.metadata.labels)`,
		// A careless policy: its message carries the Secret's data.
		MessageExpression: `has(object.data) && '` + record.DeliveryAPIKey + `' in object.data ? 'no keyward Secrets here, not even ' + string(object.data['` + record.DeliveryAPIKey + `']) : 'no keyward Secrets here'`,
	})
}

// denySecrets makes the API server refuse, through a
// ValidatingAdmissionPolicy, the Secret writes of operation op in namespace
// ns that fail v. It waits until a keyward Secret created there is refused
// (for op Create; other operations take effect with the same policy load),
// and returns a function that lifts the refusal.
func denySecrets(t *testing.T, ns string, op admissionregistrationv1.OperationType, v admissionregistrationv1.Validation) (lift func()) {
	t.Helper()
	ctx := context.Background()
	name := "deny-keyward-secrets-" + ns
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	if op != admissionregistrationv1.Create {
		ops = append(ops, op)
	}
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: ops,
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{v, {
				// The probe below: a Secret named probe is always refused.
				Expression: `object.metadata.name != 'probe'`,
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns},
			}},
		},
	}
	create(t, policy, binding)
	lift = func() {
		for _, o := range []client.Object{binding, policy} {
			if err := env.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting %s: %v", o.GetName(), err)
			}
		}
	}
	t.Cleanup(lift)
	// The policy takes effect once the API server has loaded it.
	probe := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe", Labels: map[string]string{"app.kubernetes.io/managed-by": "keyward"}},
		StringData: map[string]string{record.DeliveryAPIKey: "probe"},
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := env.Client.Create(ctx, probe.DeepCopy(), client.DryRunAll); err == nil {
			return errors.New("the policy does not refuse keyward Secrets yet")
		}
		return nil
	})
	return lift
}

// TestRotationRefusalRedacted: a rotation rewrites the whole delivery
// Secret, the current key beside the successor. A policy that refuses the
// write and quotes its data puts both in the error; neither reaches the
// Synced condition, which anyone who may read APIKeys reads. Lifted, the
// rotation completes.
func TestRotationRefusalRedacted(t *testing.T) {
	env.Need(t)
	ops, k, current := issuedForRotation(t, func(ns string) *keywardv1alpha1.APIKey { return rotatingKey(ns, 24*time.Hour, time.Hour) })
	ns := k.Namespace
	lift := denySecrets(t, ns, admissionregistrationv1.Update, admissionregistrationv1.Validation{
		Expression:        `!has(object.data) || !('` + controllers.DeliveryNextKey + `' in object.data)`,
		MessageExpression: `'refused: ' + object.data.map(k, k + '=' + string(object.data[k])).join(',')`,
	})
	requestRotation(t, k, "now")
	var failing *metav1.Condition
	testenv.Eventually(t, 20*time.Second, func() error {
		failing = meta.FindStatusCondition(getKey(t, ns, "k").Status.Conditions, keywardv1alpha1.ConditionSynced)
		if failing == nil || failing.Status != metav1.ConditionFalse || !strings.Contains(failing.Message, "refused") {
			return fmt.Errorf("Synced is %+v, want False with the policy's refusal", failing)
		}
		return nil
	})
	t.Logf("Synced: %s", failing.Message)
	if strings.Contains(failing.Message, current) || keyShaped.MatchString(failing.Message) || strings.Contains(failing.Message, base64.StdEncoding.EncodeToString([]byte(current))) {
		t.Errorf("the Synced condition holds the current key, as is or in base64: %q", failing.Message)
	}
	lift()
	waitRotated(t, ops, k, current)
}

// TestAPIErrorsAreRetriedAndReported has the API server refuse the delivery
// Secret of a new key: the key reports the error in its Synced condition,
// redacted, without claiming a phase it has not reached and without a
// hashed Secret; the manager retries with growing intervals; once the
// refusal is lifted the key is issued with nothing lost.
func TestAPIErrorsAreRetriedAndReported(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	m := startManager(t, ops, []string{ns})
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	waitAppPhase(t, ns, "acme", keywardv1alpha1.ApplicationActive)
	lift := denyDeliverySecrets(t, ns)

	create(t, testgen.APIKey(ns, "k", "acme"))
	var k *keywardv1alpha1.APIKey
	var failing *metav1.Condition
	testenv.Eventually(t, 20*time.Second, func() error {
		k = getKey(t, ns, "k")
		if failing = meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionSynced); failing == nil || failing.Status != metav1.ConditionFalse {
			return fmt.Errorf("Synced is %+v, want False", failing)
		}
		return nil
	})
	if failing.Reason != controllers.ReasonReconcileError ||
		!strings.Contains(failing.Message, "creating delivery Secret "+ns+"/"+k.DeliverySecretName()) ||
		!strings.Contains(failing.Message, "no keyward Secrets here") {
		t.Errorf("Synced does not say what failed: %+v", failing)
	}
	if !strings.Contains(failing.Message, "[redacted key]") || keyShaped.MatchString(failing.Message) {
		t.Errorf("the refusal echoed the key, and Synced did not redact it: %q", failing.Message)
	}
	if k.Status.Phase == keywardv1alpha1.APIKeyActive || k.Status.KeyID != "" || meta.IsStatusConditionTrue(k.Status.Conditions, keywardv1alpha1.ConditionReady) {
		t.Errorf("the status claims an issued key: %+v", k.Status)
	}
	if h := hashedSecret(t, ops, k); h != nil {
		t.Errorf("a hashed Secret exists for a key that was never delivered")
	}

	// Retried with backoff: the intervals between attempts grow (a
	// doubling interval from 5 ms), where a retry loop without backoff
	// would make hundreds of attempts at one pace.
	attempt := "create *v1.Secret " + ns + "/" + k.DeliverySecretName()
	var times []time.Time
	testenv.Eventually(t, 30*time.Second, func() error {
		if times = m.writes.When(attempt); len(times) < 8 {
			return fmt.Errorf("%d attempts to create the delivery Secret so far", len(times))
		}
		return nil
	})
	// The shortest of the first three intervals is the pace to compare
	// with: one of them stretched by a busy machine must not hide the
	// growth, and without backoff they would all be alike.
	first := times[1].Sub(times[0])
	for i := 2; i <= 3; i++ {
		first = min(first, times[i].Sub(times[i-1]))
	}
	last := times[len(times)-1].Sub(times[len(times)-2])
	if last < 3*first {
		t.Errorf("attempts %d to %d came %v apart, the shortest of the first three intervals %v: want retries spaced by a growing backoff", len(times)-1, len(times), last, first)
	} else {
		t.Logf("%d attempts; the shortest of the first three intervals %v, the last %v", len(times), first, last)
	}

	lift()
	k = waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	keyMaterial(t, ops, k)
	if c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionSynced); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("once issued, Synced is %+v, want True", c)
	}
	var events eventsv1.EventList
	if err := env.Client.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if keyShaped.MatchString(e.Note) {
			t.Errorf("event %s carries a key: %q", e.Reason, e.Note)
		}
	}
}

var keyShaped = regexp.MustCompile(keys.Regexp)

// TestManagerOutlivesTheAPIServer cuts the manager off from the API server
// while keys are created, revoked and disabled: once it is back, it catches
// up on all of it, with one key minted per APIKey.
func TestManagerOutlivesTheAPIServer(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	outage, cfg := env.NewOutage(t)
	startManagerWith(t, cfg, ops, []string{ns})
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	waitAppPhase(t, ns, "acme", keywardv1alpha1.ApplicationActive)
	create(t, testgen.APIKey(ns, "revoke-me", "acme"), testgen.APIKey(ns, "disable-me", "acme"))
	revokeMe := waitPhase(t, ns, "revoke-me", keywardv1alpha1.APIKeyActive)
	disableMe := waitPhase(t, ns, "disable-me", keywardv1alpha1.APIKeyActive)
	digests := map[string]string{"revoke-me": keyMaterial(t, ops, revokeMe), "disable-me": keyMaterial(t, ops, disableMe)}

	outage.Cut()
	// Meanwhile, through the test's own client: a new key, a revocation,
	// a disable. Nothing can happen to them yet.
	create(t, testgen.APIKey(ns, "meanwhile", "acme"))
	update(t, revokeMe, func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true })
	update(t, disableMe, func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = true })
	// Evidence that the manager is cut off: its requests fail.
	host := strings.TrimPrefix(strings.TrimPrefix(cfg.Host, "https://"), "http://")
	failed := requestErrors(t, host)
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := requestErrors(t, host); n < failed+2 {
			return fmt.Errorf("%v failed requests to %s since the cut", n-failed, host)
		}
		return nil
	})
	if k := getKey(t, ns, "meanwhile"); k.Status.Phase != "" {
		t.Fatalf("cut off, the manager still reconciled a new key (%s): the outage is not real", k.Status.Phase)
	}
	if err := outage.Restore(); err != nil {
		t.Fatal(err)
	}

	// client-go's reflectors back off up to 30 s while the API server is
	// away, so catching up may take that long.
	const catchUp = 90 * time.Second
	wait := func(name string, phase keywardv1alpha1.APIKeyPhase) *keywardv1alpha1.APIKey {
		var k *keywardv1alpha1.APIKey
		testenv.Eventually(t, catchUp, func() error {
			k = getKey(t, ns, name)
			if k.Status.Phase != phase || k.Status.ObservedGeneration != k.Generation {
				return fmt.Errorf("APIKey %s: phase %q, want %q", name, k.Status.Phase, phase)
			}
			return nil
		})
		return k
	}
	meanwhile := wait("meanwhile", keywardv1alpha1.APIKeyActive)
	keyMaterial(t, ops, meanwhile)
	for name, state := range map[string]record.State{"revoke-me": record.StateRevoked, "disable-me": record.StateDisabled} {
		phase := keywardv1alpha1.APIKeyRevoked
		if state == record.StateDisabled {
			phase = keywardv1alpha1.APIKeyDisabled
		}
		k := wait(name, phase)
		h := hashedSecret(t, ops, k)
		if h == nil || record.State(h.Data[record.DataState]) != state {
			t.Errorf("%s: the hashed Secret does not say %s: %v", name, state, h)
			continue
		}
		if got := string(h.Data[record.DataDigest]); got != digests[name] {
			t.Errorf("%s: the digest changed across the outage", name)
		}
		if c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionSynced); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("%s: Synced is %+v after catching up, want True", name, c)
		}
	}
}
