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
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/controllers"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testgen"
)

// createdBy sets the creator annotations, as the mutating webhook does (it
// does not run in this package's tests).
func createdBy(user, uid string) testgen.APIKeyOption {
	return func(k *keywardv1alpha1.APIKey) {
		k.Annotations[keywardv1alpha1.AnnotationCreatedBy] = user
		if uid != "" {
			k.Annotations[keywardv1alpha1.AnnotationCreatedByUID] = uid
		}
	}
}

// TestKeyOfDeletedServiceAccountIsRevoked: a key created by a
// ServiceAccount stops working when that ServiceAccount is deleted, in
// whatever namespace the key is; keys of users and of other ServiceAccounts
// are left alone.
func TestKeyOfDeletedServiceAccountIsRevoked(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns, saNS := env.Namespace(t), env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns, saNS})
	robot := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: saNS, Name: "robot"}}
	other := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: saNS, Name: "other"}}
	create(t, robot, other)
	robotUser := "system:serviceaccount:" + saNS + ":robot"
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"),
		testgen.APIKey(ns, "robot-key", "acme", createdBy(robotUser, string(robot.UID))),
		testgen.APIKey(ns, "robot-key-no-uid", "acme", createdBy(robotUser, "")),
		testgen.APIKey(ns, "other-key", "acme", createdBy("system:serviceaccount:"+saNS+":other", string(other.UID))),
		testgen.APIKey(ns, "alice-key", "acme", createdBy("alice", "")))
	for _, name := range []string{"robot-key", "robot-key-no-uid", "other-key", "alice-key"} {
		waitPhase(t, ns, name, keywardv1alpha1.APIKeyActive)
	}

	if err := env.Client.Delete(context.Background(), robot); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"robot-key", "robot-key-no-uid"} {
		k := waitPhase(t, ns, name, keywardv1alpha1.APIKeyRevoked)
		if c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady); c == nil || c.Reason != controllers.ReasonCreatorDeleted {
			t.Errorf("%s: Ready condition %+v, want reason %s", name, c, controllers.ReasonCreatorDeleted)
		}
		if h := hashedSecret(t, ops, k); h == nil || h.Labels[record.LabelState] != string(record.StateRevoked) {
			t.Errorf("%s: the hashed Secret does not say revoked: %v", name, h)
		}
	}

	// A new ServiceAccount of the same name is not the creator.
	again := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: saNS, Name: "robot"}}
	create(t, again)
	create(t, testgen.APIKey(ns, "old-robot-key", "acme", createdBy(robotUser, string(robot.UID))))
	waitPhase(t, ns, "old-robot-key", keywardv1alpha1.APIKeyRevoked)

	for _, name := range []string{"other-key", "alice-key"} {
		if k := getKey(t, ns, name); k.Status.Phase != keywardv1alpha1.APIKeyActive {
			t.Errorf("%s: phase %s, want Active", name, k.Status.Phase)
		}
	}
}
