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
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/controllers"
	"github.com/keyward/keyward/test/testgen"
)

// TestDuplicateExternalIDRejectsTheNewer: two Applications of one group
// that raced past admission with the same externalID (here: no webhook at
// all) are told apart by the controller: the older stays Active, the newer
// is Rejected, and its keys never work.
func TestDuplicateExternalIDRejectsTheNewer(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ops, ns})
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "first", "things", testgen.WithExternalID("CUST-1")))
	waitAppPhase(t, ns, "first", keywardv1alpha1.ApplicationActive)
	create(t, testgen.Application(ns, "second", "things", testgen.WithExternalID("CUST-1")), testgen.APIKey(ns, "k", "second"))
	a := waitAppPhase(t, ns, "second", keywardv1alpha1.ApplicationRejected)
	if c := meta.FindStatusCondition(a.Status.Conditions, keywardv1alpha1.ConditionReady); c == nil || c.Reason != controllers.ReasonDuplicateExternalID {
		t.Errorf("Application second rejected with %+v, want reason %s", c, controllers.ReasonDuplicateExternalID)
	}
	k := waitPhase(t, ns, "k", keywardv1alpha1.APIKeyRejected)
	if k.Status.KeyID != "" {
		t.Errorf("a key of the rejected application was issued (%s)", k.Status.KeyID)
	}
	waitAppPhase(t, ns, "first", keywardv1alpha1.ApplicationActive)
}

// TestRejectedApplicationFreesItsExternalID: an Application Rejected for
// its group's limit never holds a working key again; the new Application
// its message asks for may take its externalID.
func TestRejectedApplicationFreesItsExternalID(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ops, ns})
	create(t, testgen.KeyGroup(ns, "things", testgen.WithLimits(1, 10)), testgen.Application(ns, "first", "things"))
	waitAppPhase(t, ns, "first", keywardv1alpha1.ApplicationActive)
	create(t, testgen.Application(ns, "over", "things", testgen.WithExternalID("CUST-1")))
	waitAppPhase(t, ns, "over", keywardv1alpha1.ApplicationRejected)

	update(t, testgen.KeyGroup(ns, "things"), func(g *keywardv1alpha1.KeyGroup) { g.Spec.Limits.MaxApplications = ptr.To(int32(2)) })
	create(t, testgen.Application(ns, "successor", "things", testgen.WithExternalID("CUST-1")))
	waitAppPhase(t, ns, "successor", keywardv1alpha1.ApplicationActive)
	if a := waitAppPhase(t, ns, "over", keywardv1alpha1.ApplicationRejected); meta.FindStatusCondition(a.Status.Conditions, keywardv1alpha1.ConditionReady).Reason != controllers.ReasonLimitExceeded {
		t.Errorf("the rejected Application's reason changed: %+v", a.Status.Conditions)
	}
}
