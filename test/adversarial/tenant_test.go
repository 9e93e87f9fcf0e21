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

package adversarial

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/grants"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
)

var bg = context.Background()

// getKey reads a key of ns as the cluster admin.
func getKey(t *testing.T, name string) *keywardv1alpha1.APIKey {
	t.Helper()
	k := &keywardv1alpha1.APIKey{}
	if err := s.admin.Get(bg, client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
		t.Fatal(err)
	}
	return k
}

func getApp(t *testing.T, name string) *keywardv1alpha1.Application {
	t.Helper()
	a := &keywardv1alpha1.Application{}
	if err := s.admin.Get(bg, client.ObjectKey{Namespace: ns, Name: name}, a); err != nil {
		t.Fatal(err)
	}
	return a
}

func getGroup(t *testing.T, name string) *keywardv1alpha1.KeyGroup {
	t.Helper()
	g := &keywardv1alpha1.KeyGroup{}
	if err := s.admin.Get(bg, client.ObjectKey{Namespace: ns, Name: name}, g); err != nil {
		t.Fatal(err)
	}
	return g
}

// patchAs merge-patches obj (read fresh by the caller) with f applied, as
// user.
func patchAs[T client.Object](user string, obj T, f func(T)) error {
	p := client.MergeFrom(obj.DeepCopyObject().(T))
	f(obj)
	return s.as(user).Patch(bg, obj, p)
}

// annotated returns obj with one more annotation.
func annotated[T client.Object](obj T, k, v string) T {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[k] = v
	obj.SetAnnotations(a)
	return obj
}

// createdKey creates k as mallory; when admitted, it returns the stored
// object, else nil (after checking it was a refusal, not an error).
func createdKey(t *testing.T, k *keywardv1alpha1.APIKey) *keywardv1alpha1.APIKey {
	t.Helper()
	if err := s.as(mallory).Create(bg, k); err != nil {
		if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			t.Fatalf("creating %s: %v", k.Name, err)
		}
		t.Logf("refused at admission, which also keeps the forged value out: %v", err)
		return nil
	}
	return getKey(t, k.Name)
}

// forbiddenByRBAC asserts an API server authorization refusal.
func forbiddenByRBAC(t *testing.T, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "cannot") {
		t.Errorf("want the API server's RBAC refusal, got %v", err)
	}
}

// forgedIdentity is what a tenant would like the controller's grant check
// to ask for.
const forgedIdentity = `{"username":"system:admin","groups":["system:masters","system:authenticated"]}`

func tenantProbes() []probe {
	return []probe{
		// grant
		{"grant", "key with a scope the tenant may not grant", func(t *testing.T) {
			refused(t, s.as(mallory).Create(bg, apiKey(ns, "g-nogrant", "m-app", "admin")), "spec.scopes[0]", "grant")
		}},
		{"grant", "grant held only in another namespace", func(t *testing.T) {
			// mallory holds grant on api.admin in adv-x, not here.
			refused(t, s.as(mallory).Create(bg, apiKey(ns, "g-othernamespace", "m-app", "admin")), "spec.scopes[0]", "grant")
		}},
		{"grant", "grant held only on another group's scope of that name", func(t *testing.T) {
			// mallory holds grant on other.admin; the key's group is api.
			refused(t, s.as(mallory).Create(bg, apiKey(ns, "g-othergroup", "m-app", "admin")), "spec.scopes[0]", "grant")
		}},
		{"grant", "key admitted before its Application is never issued without the grant", func(t *testing.T) {
			// GitOps order: the key first (admission cannot check the grant
			// without the Application), then the Application.
			if err := s.as(mallory).Create(bg, apiKey(ns, "early-k", "early", "admin")); err != nil {
				refused(t, err, "spec.scopes[0]")
				return
			}
			if err := s.as(mallory).Create(bg, application(ns, "early", "api", "")); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				k := getKey(t, "early-k")
				if k.Status.Phase == keywardv1alpha1.APIKeyActive || k.Status.KeyID != "" {
					t.Fatalf("the key was issued (%s, key ID %s) with a scope its creator may not grant", k.Status.Phase, k.Status.KeyID)
				}
				if k.Status.Phase == keywardv1alpha1.APIKeyRejected {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 30s the key is %q, want Rejected", k.Status.Phase)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}},

		// creator, on create
		{"creator", "created-by forged on APIKey create", func(t *testing.T) {
			k := createdKey(t, annotated(apiKey(ns, "c-createdby", "m-app", "read"), keywardv1alpha1.AnnotationCreatedBy, "system:admin"))
			if k != nil && k.Annotations[keywardv1alpha1.AnnotationCreatedBy] != mallory {
				t.Errorf("%s is %q, want %q", keywardv1alpha1.AnnotationCreatedBy, k.Annotations[keywardv1alpha1.AnnotationCreatedBy], mallory)
			}
		}},
		{"creator", "created-by-uid forged on APIKey create", func(t *testing.T) {
			k := createdKey(t, annotated(apiKey(ns, "c-createdbyuid", "m-app", "read"), keywardv1alpha1.AnnotationCreatedByUID, "0b0e5d3c-forged"))
			if k == nil {
				return
			}
			if v, has := k.Annotations[keywardv1alpha1.AnnotationCreatedByUID]; has {
				t.Errorf("%s is %q; a user that is not a ServiceAccount has none", keywardv1alpha1.AnnotationCreatedByUID, v)
			}
		}},
		{"creator", "grant-check identity forged on APIKey create", func(t *testing.T) {
			k := createdKey(t, annotated(apiKey(ns, "c-grantcheck", "m-app", "read"), keywardv1alpha1.AnnotationGrantCheck, forgedIdentity))
			if k == nil {
				return
			}
			u, err := grants.ParseIdentity(k.Annotations[keywardv1alpha1.AnnotationGrantCheck])
			if err != nil || u.Username != mallory {
				t.Errorf("%s is %q (%v), want mallory's identity", keywardv1alpha1.AnnotationGrantCheck, k.Annotations[keywardv1alpha1.AnnotationGrantCheck], err)
			}
		}},
		{"creator", "created-by forged on Application create", func(t *testing.T) {
			a := annotated(application(ns, "c-app", "api", ""), keywardv1alpha1.AnnotationCreatedBy, "system:admin")
			if err := s.as(mallory).Create(bg, a); err != nil {
				refused(t, err, keywardv1alpha1.AnnotationCreatedBy)
				return
			}
			if got := getApp(t, "c-app").Annotations[keywardv1alpha1.AnnotationCreatedBy]; got != mallory {
				t.Errorf("%s is %q, want %q", keywardv1alpha1.AnnotationCreatedBy, got, mallory)
			}
		}},

		// creator, on update
		{"creator", "created-by changed on update", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "m-key"), func(k *keywardv1alpha1.APIKey) {
				annotated(k, keywardv1alpha1.AnnotationCreatedBy, "system:admin")
			}), keywardv1alpha1.AnnotationCreatedBy)
		}},
		{"creator", "created-by-uid added on update", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "m-key"), func(k *keywardv1alpha1.APIKey) {
				annotated(k, keywardv1alpha1.AnnotationCreatedByUID, "0b0e5d3c-forged")
			}), keywardv1alpha1.AnnotationCreatedByUID)
		}},
		{"creator", "grant-check identity changed on update", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "m-key"), func(k *keywardv1alpha1.APIKey) {
				annotated(k, keywardv1alpha1.AnnotationGrantCheck, forgedIdentity)
			}), keywardv1alpha1.AnnotationGrantCheck)
		}},
		{"creator", "rotation requester forged on update", func(t *testing.T) {
			// Whatever is sent, the webhook records who asked.
			_ = patchAs(mallory, getKey(t, "m-key"), func(k *keywardv1alpha1.APIKey) {
				annotated(k, keywardv1alpha1.AnnotationRotationRequestedBy, forgedIdentity)
				annotated(k, keywardv1alpha1.AnnotationRotate, "mallory-asks")
			})
			u, err := grants.ParseIdentity(getKey(t, "m-key").Annotations[keywardv1alpha1.AnnotationRotationRequestedBy])
			if err != nil || u.Username != mallory {
				t.Errorf("%s is %+v (%v), want mallory's identity", keywardv1alpha1.AnnotationRotationRequestedBy, u, err)
			}
		}},
		{"creator", "created-by removed on update", func(t *testing.T) {
			k := getKey(t, "m-key")
			p := client.RawPatch(client.Merge.Type(), []byte(`{"metadata":{"annotations":{"`+keywardv1alpha1.AnnotationCreatedBy+`":null}}}`))
			_ = s.as(mallory).Patch(bg, k, p)
			if got := getKey(t, "m-key").Annotations[keywardv1alpha1.AnnotationCreatedBy]; got != mallory {
				t.Errorf("after a patch removing it, %s is %q, want %q", keywardv1alpha1.AnnotationCreatedBy, got, mallory)
			}
		}},

		{"creator", "key of a deleted ServiceAccount stops working", func(t *testing.T) {
			sa := &corev1.ServiceAccount{}
			if err := s.admin.Get(bg, client.ObjectKey{Namespace: ns, Name: "bot"}, sa); err != nil {
				t.Fatal(err)
			}
			if err := s.asServiceAccount(t, "bot", string(sa.UID)).Create(bg, apiKey(ns, "bot-k", "m-app", "read")); err != nil {
				t.Fatal(err)
			}
			plaintext := s.waitIssued(t, ns, "bot-k")
			if err := s.admin.Delete(bg, sa); err != nil {
				t.Fatal(err)
			}
			eventually401(t, 30*time.Second, func() answer { return s.send(t, s.front, get("/public/a", bearer(plaintext))) }, "revoked")
		}},
		{"creator", "key created with the token of a replaced ServiceAccount", func(t *testing.T) {
			// bot2 exists, but the request carries the UID of an earlier
			// ServiceAccount of that name: a token that outlived it.
			c := s.asServiceAccount(t, "bot2", "6c0ffee0-0000-4000-8000-000000000000")
			if err := c.Create(bg, apiKey(ns, "bot2-k", "m-app", "read")); err != nil {
				refused(t, err, "bot2")
				return
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				k := getKey(t, "bot2-k")
				sec := &corev1.Secret{}
				if err := s.admin.Get(bg, client.ObjectKey{Namespace: ns, Name: k.DeliverySecretName()}, sec); err == nil {
					if a := s.send(t, s.front, get("/public/a", bearer(string(sec.Data[record.DeliveryAPIKey])))); a.status == http.StatusOK {
						t.Fatalf("the key of a ServiceAccount that no longer exists works: %s", a)
					}
				}
				if k.Status.Phase == keywardv1alpha1.APIKeyRevoked || k.Status.Phase == keywardv1alpha1.APIKeyRejected {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 30s the key is %q, want Revoked (or Rejected)", k.Status.Phase)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}},

		// binding
		{"binding", "application-uid forged on create", func(t *testing.T) {
			forged := string(getApp(t, "app").UID) // another Application's
			k := createdKey(t, annotated(apiKey(ns, "b-appuid", "m-app", "read"), keywardv1alpha1.AnnotationApplicationUID, forged))
			if want := string(getApp(t, "m-app").UID); k != nil && k.Annotations[keywardv1alpha1.AnnotationApplicationUID] != want {
				t.Errorf("%s is %q, want m-app's %q", keywardv1alpha1.AnnotationApplicationUID, k.Annotations[keywardv1alpha1.AnnotationApplicationUID], want)
			}
		}},
		{"binding", "keygroup-uid forged on create", func(t *testing.T) {
			forged := string(getGroup(t, "other").UID)
			k := createdKey(t, annotated(apiKey(ns, "b-groupuid", "m-app", "read"), keywardv1alpha1.AnnotationKeyGroupUID, forged))
			if want := string(getGroup(t, "api").UID); k != nil && k.Annotations[keywardv1alpha1.AnnotationKeyGroupUID] != want {
				t.Errorf("%s is %q, want api's %q", keywardv1alpha1.AnnotationKeyGroupUID, k.Annotations[keywardv1alpha1.AnnotationKeyGroupUID], want)
			}
		}},
		{"binding", "application-uid changed on update", func(t *testing.T) {
			forged := string(getApp(t, "app").UID)
			refused(t, patchAs(mallory, getKey(t, "m-key"), func(k *keywardv1alpha1.APIKey) {
				annotated(k, keywardv1alpha1.AnnotationApplicationUID, forged)
			}), keywardv1alpha1.AnnotationApplicationUID)
		}},
		{"binding", "keygroup-uid changed on update", func(t *testing.T) {
			forged := string(getGroup(t, "other").UID)
			refused(t, patchAs(mallory, getKey(t, "m-key"), func(k *keywardv1alpha1.APIKey) {
				annotated(k, keywardv1alpha1.AnnotationKeyGroupUID, forged)
			}), keywardv1alpha1.AnnotationKeyGroupUID)
		}},
		{"binding", "a replaced Application does not carry its keys to another group", func(t *testing.T) {
			// mallory may grant api.read, not other.read.
			c := s.as(mallory)
			if err := c.Create(bg, application(ns, "mv", "api", "")); err != nil {
				t.Fatal(err)
			}
			if err := c.Create(bg, apiKey(ns, "mv-k", "mv", "read")); err != nil {
				t.Fatal(err)
			}
			plaintext := s.waitIssued(t, ns, "mv-k")
			if err := c.Delete(bg, getApp(t, "mv")); err != nil {
				t.Fatal(err)
			}
			if err := c.Create(bg, application(ns, "mv", "other", "")); err != nil {
				t.Fatal(err)
			}
			// Give the controller time to (wrongly) re-issue, asking all along.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if a := s.send(t, s.otherFront, get("/public/a", bearer(plaintext))); a.status == http.StatusOK {
					t.Fatalf("the key admitted under group api works on group other after its Application was replaced: %s", a)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if k := getKey(t, "mv-k"); k.Status.Phase != keywardv1alpha1.APIKeyRejected {
				t.Errorf("the key of the replaced Application is %q, want Rejected", k.Status.Phase)
			}
		}},

		{"binding", "a replaced Application does not inherit a key waiting to be issued", func(t *testing.T) {
			// Issue 14's first bypass: the key is admitted under Application
			// wait of group api, its issuance blocked by a Secret of its
			// delivery Secret's name; wait is then deleted and created again
			// in group mv2, and the blocker removed. mallory may grant read
			// in both groups, so only the binding stands in the way.
			c := s.as(mallory)
			blocker := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wait-k-key"}, StringData: map[string]string{"blocker": "yes"}}
			if err := c.Create(bg, blocker); err != nil {
				t.Fatal(err)
			}
			if err := c.Create(bg, application(ns, "wait", "api", "")); err != nil {
				t.Fatal(err)
			}
			if err := c.Create(bg, apiKey(ns, "wait-k", "wait", "read")); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 30*time.Second, func() error {
				k := getKey(t, "wait-k")
				if cond := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady); cond == nil || cond.Reason != "DeliverySecretConflict" {
					return fmt.Errorf("the key's issuance is not blocked yet: %+v", k.Status)
				}
				return nil
			})
			if err := c.Delete(bg, getApp(t, "wait")); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(bg, blocker); err != nil {
				t.Fatal(err)
			}
			if err := c.Create(bg, application(ns, "wait", "mv2", "")); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				sec := &corev1.Secret{}
				if err := s.admin.Get(bg, client.ObjectKey{Namespace: ns, Name: "wait-k-key"}, sec); err == nil && len(sec.Data[record.DeliveryAPIKey]) > 0 {
					a := s.directURL(t, "/v1/verify/"+ns+"/mv2", merge(original("/public/a"), map[string][]string{
						"Authorization": {"Bearer " + string(sec.Data[record.DeliveryAPIKey])},
					}))
					if a.status == http.StatusOK {
						t.Fatalf("the key admitted under Application wait of group api was issued for group mv2 after wait was replaced: %s", a)
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
			if k := getKey(t, "wait-k"); k.Status.Phase != keywardv1alpha1.APIKeyRejected {
				t.Errorf("the key of the replaced Application is %q, want Rejected", k.Status.Phase)
			}
		}},

		// immutable
		{"immutable", "scopes of a key widened", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "m-key"), func(k *keywardv1alpha1.APIKey) {
				k.Spec.Scopes = append(k.Spec.Scopes, "admin")
			}), "spec.scopes")
		}},
		{"immutable", "application of a key changed", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "m-key"), func(k *keywardv1alpha1.APIKey) { k.Spec.Application = "app" }), "spec.application")
		}},
		{"immutable", "secretName of a key changed", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "m-key"), func(k *keywardv1alpha1.APIKey) { k.Spec.SecretName = "elsewhere" }), "spec.secretName")
		}},
		{"immutable", "revoked key un-revoked", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "revoked"), func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = false }), "spec.revoked")
		}},
		{"immutable", "revoked Application un-revoked", func(t *testing.T) {
			refused(t, patchAs(mallory, getApp(t, "gone"), func(a *keywardv1alpha1.Application) { a.Spec.Revoked = false }), "spec.revoked")
		}},
		{"immutable", "expiresAt moved later", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "expires-later"), func(k *keywardv1alpha1.APIKey) {
				later := metav1.NewTime(k.Spec.ExpiresAt.Add(365 * 24 * time.Hour))
				k.Spec.ExpiresAt = &later
			}), "spec.expiresAt")
		}},
		{"immutable", "expiresAt removed", func(t *testing.T) {
			k := getKey(t, "expires-later")
			refused(t, s.as(mallory).Patch(bg, k, client.RawPatch(client.Merge.Type(), []byte(`{"spec":{"expiresAt":null}}`))), "spec.expiresAt")
		}},
		{"immutable", "keyGroup of an Application changed", func(t *testing.T) {
			refused(t, patchAs(mallory, getApp(t, "m-app"), func(a *keywardv1alpha1.Application) { a.Spec.KeyGroup = "other" }), "spec.keyGroup")
		}},

		// match-conditions: the webhooks are skipped only for an update
		// whose sole change is disabling or revoking; combined with any
		// other change, they still judge it.
		{"match-conditions", "revoke combined with a scope change", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "mc-scopes"), func(k *keywardv1alpha1.APIKey) {
				k.Spec.Revoked = true
				k.Spec.Scopes = append(k.Spec.Scopes, "admin")
			}), "spec.scopes")
		}},
		{"match-conditions", "disable combined with a created-by change", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "mc-annotation"), func(k *keywardv1alpha1.APIKey) {
				k.Spec.Disabled = true
				annotated(k, keywardv1alpha1.AnnotationCreatedBy, "system:admin")
			}), keywardv1alpha1.AnnotationCreatedBy)
		}},
		{"match-conditions", "revoke combined with a later expiresAt", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "mc-expiry"), func(k *keywardv1alpha1.APIKey) {
				k.Spec.Revoked = true
				later := metav1.NewTime(k.Spec.ExpiresAt.Add(365 * 24 * time.Hour))
				k.Spec.ExpiresAt = &later
			}), "spec.expiresAt")
		}},
		{"match-conditions", "disable combined with an application change", func(t *testing.T) {
			refused(t, patchAs(mallory, getKey(t, "mc-application"), func(k *keywardv1alpha1.APIKey) {
				k.Spec.Disabled = true
				k.Spec.Application = "m-app"
			}), "spec.application")
		}},

		// lifetime
		{"lifetime", "key without expiresAt in a group with maxKeyLifetime", func(t *testing.T) {
			refused(t, s.as(mallory).Create(bg, apiKey(ns, "l-forever", "life-a", "read")), "spec.expiresAt")
		}},
		{"lifetime", "key outliving its group's maxKeyLifetime", func(t *testing.T) {
			k := apiKey(ns, "l-long", "life-a", "read")
			inTwoYears := metav1.NewTime(time.Now().Add(2 * 365 * 24 * time.Hour))
			k.Spec.ExpiresAt = &inTwoYears
			refused(t, s.as(mallory).Create(bg, k), "spec.expiresAt", "maxKeyLifetime")
		}},

		// delivery
		{"delivery", "secretName of another key's delivery Secret", func(t *testing.T) {
			k := apiKey(ns, "d-steal", "m-app", "read")
			k.Spec.SecretName = getKey(t, "read").DeliverySecretName()
			if err := s.as(mallory).Create(bg, k); err != nil {
				refused(t, err, "spec.secretName")
				return
			}
			// Wait until the controller has decided on the key (a Ready
			// condition for its generation): whatever it would write, it
			// has written.
			testenv.Eventually(t, 30*time.Second, func() error {
				got := getKey(t, "d-steal")
				if c := meta.FindStatusCondition(got.Status.Conditions, keywardv1alpha1.ConditionReady); c == nil || c.ObservedGeneration != got.Generation {
					return fmt.Errorf("APIKey d-steal not decided yet: %+v", got.Status)
				}
				return nil
			})
			sec := &corev1.Secret{}
			if err := s.admin.Get(bg, client.ObjectKey{Namespace: ns, Name: k.Spec.SecretName}, sec); err != nil {
				t.Fatal(err)
			}
			if got := string(sec.Data[record.DeliveryAPIKey]); got != s.key(ns, "read") {
				t.Errorf("the delivery Secret of key read now holds another key (ID %s): a key's Secret was taken over", sec.Data[record.DeliveryKeyID])
			}
		}},
		{"delivery", "delivery Secret planted with a plaintext of the tenant's choosing", func(t *testing.T) {
			chosen := forgedRecord(t).plaintext
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "d-plant-key"},
				Data: map[string][]byte{record.DeliveryAPIKey: []byte(chosen), record.DeliveryKeyID: []byte(chosen[:8])}}
			if err := s.as(mallory).Create(bg, sec); err != nil {
				t.Fatal(err)
			}
			if err := s.as(mallory).Create(bg, apiKey(ns, "d-plant", "m-app", "read")); err != nil {
				t.Fatal(err)
			}
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
				if a := s.send(t, s.front, get("/public/a", bearer(chosen))); a.status != http.StatusUnauthorized || a.reason != "unknown" {
					t.Fatalf("the plaintext the tenant planted: %s, want 401 unknown", a)
				}
			}
		}},

		// status
		{"status", "tenant writes a key's status", func(t *testing.T) {
			k := getKey(t, "disabled")
			p := client.MergeFrom(k.DeepCopy())
			k.Status.Phase = keywardv1alpha1.APIKeyActive
			forbiddenByRBAC(t, s.as(mallory).Status().Patch(bg, k, p))
		}},
		{"status", "a forged Active phase does not switch a disabled key on", func(t *testing.T) {
			// Even whoever may write status (here the cluster admin) does
			// not switch the key: the hashed record is the truth.
			k := getKey(t, "status-forged")
			p := client.MergeFrom(k.DeepCopy())
			k.Status.Phase = keywardv1alpha1.APIKeyActive
			if err := s.admin.Status().Patch(bg, k, p); err != nil {
				t.Fatal(err)
			}
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
				if a := s.send(t, s.front, get("/public/a", bearer(s.key(ns, "status-forged")))); a.status != http.StatusUnauthorized || a.reason != "disabled" {
					t.Fatalf("after status.phase was set to Active: %s, want 401 disabled", a)
				}
			}
		}},

		// record
		{"record", "tenant creates a Secret in the operator's namespace", func(t *testing.T) {
			r := forgedRecord(t)
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: "apikey-forged", Labels: r.Labels("forged")}, Data: r.SecretData()}
			forbiddenByRBAC(t, s.as(mallory).Create(bg, sec))
		}},
		{"record", "tenant reads a hashed Secret", func(t *testing.T) {
			sec := &corev1.Secret{}
			forbiddenByRBAC(t, s.as(mallory).Get(bg, client.ObjectKey{Namespace: operatorNS, Name: record.SecretName(string(getKey(t, "read").UID))}, sec))
		}},
		{"record", "tenant lists the hashed Secrets", func(t *testing.T) {
			forbiddenByRBAC(t, s.as(mallory).List(bg, &corev1.SecretList{}, client.InNamespace(operatorNS), client.MatchingLabels{record.LabelHashedKey: "true"}))
		}},
		{"record", "a hashed record forged in the tenant's namespace", func(t *testing.T) {
			r := forgedRecord(t)
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apikey-forged", Labels: r.Labels("forged")}, Data: r.SecretData()}
			if err := s.as(mallory).Create(bg, sec); err != nil {
				t.Fatal(err) // mallory may create Secrets in her namespace
			}
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
				if a := s.send(t, s.front, get("/admin/x", bearer(r.plaintext))); a.status != http.StatusUnauthorized || a.reason != "unknown" {
					t.Fatalf("the key of a record forged in namespace %s: %s, want 401 unknown", ns, a)
				}
			}
		}},

		// deletion
		{"deletion", "recently used key deleted without confirm-delete", func(t *testing.T) {
			refused(t, s.as(mallory).Delete(bg, getKey(t, "used1")), keywardv1alpha1.AnnotationConfirmDelete)
		}},
		{"deletion", "recently used key deleted with a wrong confirm-delete", func(t *testing.T) {
			refused(t, s.as(mallory).Delete(bg, getKey(t, "used2")), keywardv1alpha1.AnnotationConfirmDelete)
		}},
		{"deletion", "Application holding a recently used key deleted without confirm-delete", func(t *testing.T) {
			refused(t, s.as(mallory).Delete(bg, getApp(t, "used-app")), keywardv1alpha1.AnnotationConfirmDelete)
		}},
		{"deletion", "KeyGroup holding a recently used key deleted without confirm-delete", func(t *testing.T) {
			refused(t, s.as(alice).Delete(bg, getGroup(t, "del")), keywardv1alpha1.AnnotationConfirmDelete)
		}},

		{"state", "key created under a revoked Application", func(t *testing.T) {
			refused(t, s.as(mallory).Create(bg, apiKey(ns, "st-gone", "gone", "read")), "spec.application")
		}},

		{"state", "keys of a deleted KeyGroup stop working", func(t *testing.T) {
			if err := s.as(alice).Delete(bg, getGroup(t, "kgd")); err != nil {
				t.Fatal(err)
			}
			eventually401(t, 30*time.Second, func() answer {
				return s.directURL(t, "/v1/verify/"+ns+"/kgd", merge(original("/public/a"), map[string][]string{
					"Authorization": {"Bearer " + s.key(ns, "kgd-k")},
				}))
			}, "unknown")
		}},
		{"state", "key deleted after its finalizer was stripped stops working", func(t *testing.T) {
			// The finalizer is what deletes the hashed record; a tenant who
			// strips it and deletes at once must not leave a working key
			// that no APIKey shows.
			k := getKey(t, "fin-k")
			_ = s.as(mallory).Patch(bg, k, client.RawPatch(client.Merge.Type(), []byte(`{"metadata":{"finalizers":null}}`)))
			if err := s.as(mallory).Delete(bg, k); err != nil {
				t.Fatal(err)
			}
			eventually401(t, 30*time.Second, func() answer {
				return s.send(t, s.front, get("/public/a", bearer(s.key(ns, "fin-k"))))
			}, "unknown")
		}},

		{"deletion", "recently used key deleted with a collection delete", func(t *testing.T) {
			_ = s.as(mallory).DeleteAllOf(bg, &keywardv1alpha1.APIKey{}, client.InNamespace(ns), client.MatchingLabels{labelProbe: "dc-key"})
			if k := getKey(t, "used-dc"); !k.DeletionTimestamp.IsZero() {
				t.Errorf("a recently used key is being deleted by a collection delete without confirm-delete")
			}
		}},
		{"deletion", "Application holding a recently used key deleted with a collection delete", func(t *testing.T) {
			_ = s.as(mallory).DeleteAllOf(bg, &keywardv1alpha1.Application{}, client.InNamespace(ns), client.MatchingLabels{labelProbe: "dc-app"})
			a := &keywardv1alpha1.Application{}
			err := s.admin.Get(bg, client.ObjectKey{Namespace: ns, Name: "used-dc-app"}, a)
			if err != nil || !a.DeletionTimestamp.IsZero() {
				t.Errorf("an Application holding a recently used key was deleted by a collection delete without confirm-delete (%v)", err)
			}
		}},

		// limits
		{"limits", "one key more than maxKeysPerApplication", func(t *testing.T) {
			refused(t, s.as(mallory).Create(bg, apiKey(ns, "lim-k2", "lim-a", "read")), "maxKeysPerApplication")
		}},
		{"limits", "one Application more than maxApplications", func(t *testing.T) {
			refused(t, s.as(mallory).Create(bg, application(ns, "lim-b", "lim", "")), "maxApplications")
		}},

		{"limits", "keys created at once past maxKeysPerApplication", func(t *testing.T) {
			if n := activeAfterRace(t, func(i int) client.Object { return apiKey(ns, fmt.Sprintf("rk-%d", i), "rk-a", "read") }, keyPhase); n > 1 {
				t.Errorf("%d keys of Application rk-a are Active, over maxKeysPerApplication 1", n)
			}
		}},
		{"limits", "Applications created at once past maxApplications", func(t *testing.T) {
			if n := activeAfterRace(t, func(i int) client.Object { return application(ns, fmt.Sprintf("ra-%d", i), "ra", "") }, appPhase); n > 1 {
				t.Errorf("%d Applications of KeyGroup ra are Active, over maxApplications 1", n)
			}
		}},

		// scopes
		{"scopes", "key with a scope its group does not define", func(t *testing.T) {
			// alice may grant every scope name in the namespace, so only
			// the group's definition stands in the way.
			refused(t, s.as(alice).Create(bg, apiKey(ns, "s-unknown", "app", "everything")), "spec.scopes[0]", "Unsupported value")
		}},
		{"scopes", "tenant widens a scope's rules", func(t *testing.T) {
			forbiddenByRBAC(t, patchAs(mallory, getGroup(t, "api"), func(g *keywardv1alpha1.KeyGroup) {
				g.Spec.Scopes[1].Rules[0].Paths = append(g.Spec.Scopes[1].Rules[0].Paths, "/admin/*")
			}))
		}},
		{"scopes", "tenant creates a KeyGroup of her own", func(t *testing.T) {
			forbiddenByRBAC(t, s.as(mallory).Create(bg, keyGroup(ns, "mine", "mine", nil)))
		}},

		// external-id
		{"external-id", "externalID of another Application of the group", func(t *testing.T) {
			refused(t, s.as(mallory).Create(bg, application(ns, "dup", "api", "EXT-APP-1")), "spec.externalID")
		}},
		{"external-id", "externalID changed once set", func(t *testing.T) {
			refused(t, patchAs(mallory, getApp(t, "m-app"), func(a *keywardv1alpha1.Application) { a.Spec.ExternalID = "EXT-APP-1" }), "spec.externalID")
		}},

		{"external-id", "Applications created at once with one externalID", func(t *testing.T) {
			if n := activeAfterRace(t, func(i int) client.Object { return application(ns, fmt.Sprintf("eid-%d", i), "eid", "CUSTOMER-42") }, appPhase); n > 1 {
				t.Errorf("%d Active Applications of KeyGroup eid share externalID CUSTOMER-42", n)
			}
		}},

		// source-ranges
		{"source-ranges", "key's allowedSourceRanges outside its group's", func(t *testing.T) {
			k := apiKey(ns, "r-wide", "net-a", "read")
			k.Spec.AllowedSourceRanges = []keywardv1alpha1.CIDR{"0.0.0.0/0"}
			refused(t, s.as(mallory).Create(bg, k), "spec.allowedSourceRanges")
		}},
	}
}

// forged is a hashed record for a key made up by a tenant, with a scope
// she was never granted.
type forged struct {
	*record.Record
	plaintext string
}

func forgedRecord(t *testing.T) forged {
	t.Helper()
	k, err := keys.Generate("adv")
	if err != nil {
		t.Fatal(err)
	}
	return forged{
		Record: &record.Record{
			Digest: k.Digest(), KeyID: k.ID(), Namespace: ns, KeyGroup: "api", Application: "app", APIKey: "forged",
			Scopes: []string{"admin"}, State: record.StateActive,
		},
		plaintext: k.Plaintext(),
	}
}

// activeAfterRace creates six objects as mallory, all at the same moment
// (so that the webhooks race), waits until each admitted one is Active or
// Rejected, and returns how many are Active.
func activeAfterRace(t *testing.T, obj func(i int) client.Object, phase func(t *testing.T, name string) string) int {
	t.Helper()
	const n = 6
	objs := make([]client.Object, n)
	errs := make([]error, n)
	for i := range objs {
		objs[i] = obj(i)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range objs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.as(mallory).Create(bg, objs[i])
		}()
	}
	close(start)
	wg.Wait()
	var names []string
	for i, err := range errs {
		if err == nil {
			names = append(names, objs[i].GetName())
		}
	}
	t.Logf("admission let %d of %d through", len(names), n)
	deadline := time.Now().Add(30 * time.Second)
	for {
		active, settled := 0, true
		var phases []string
		for _, name := range names {
			p := phase(t, name)
			phases = append(phases, name+"="+p)
			switch p {
			case "Active":
				active++
			case "Rejected":
			default:
				settled = false
			}
		}
		if settled {
			return active
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after 30s: %s", strings.Join(phases, " "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func keyPhase(t *testing.T, name string) string { return string(getKey(t, name).Status.Phase) }

func appPhase(t *testing.T, name string) string { return string(getApp(t, name).Status.Phase) }
