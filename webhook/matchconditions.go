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
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// An incident must be stoppable while the webhook endpoint is down: both
// APIKey webhooks skip, by a matchCondition the API server evaluates, the
// updates whose only change is spec.disabled or spec.revoked going from
// false to true. Everything else, a revoke combined with any other change
// included, still goes to the webhooks, and is refused while they cannot
// answer (failurePolicy: Fail). `make manifests` writes this condition into
// config/webhook/manifests.yaml (hack/webhookconditions): this is its one
// home.

// SwitchOffWebhooks are the webhooks that let a switch-off through alone.
var SwitchOffWebhooks = []string{"mapikey.keyward.dev", "vapikey.keyward.dev"}

// switchOffFields are the fields a switch-off turns from false to true.
var switchOffFields = []string{"disabled", "revoked"}

// ignoredMetadata are the metadata fields the API server itself changes on
// an update (managedFields before admission, generation before validation)
// or that only carry the request's precondition. Annotations are compared
// apart, but for ignoredAnnotations.
var ignoredMetadata = []string{"managedFields", "resourceVersion", "generation", "annotations"}

// ignoredAnnotations may change along with a switch-off: kubectl apply
// rewrites its last-applied-configuration with every change it applies (and
// kubectl apply --server-side removes it when it takes over the fields), and
// keyward never reads it. Without it, a switch-off committed to Git and
// applied would be refused while the webhook is down.
var ignoredAnnotations = []string{"kubectl.kubernetes.io/last-applied-configuration"}

// MatchConditions returns the matchConditions of the APIKey webhooks.
func MatchConditions() []admissionregistrationv1.MatchCondition {
	return []admissionregistrationv1.MatchCondition{{Name: "keyward.dev/not-only-a-switch-off", Expression: "!(" + switchOffOnly() + ")"}}
}

// switchOffOnly is a CEL expression, over the admission request, that is
// true for exactly the updates whose only change is one or both of
// switchOffFields going from false (or absent) to true.
func switchOffOnly() string {
	quote := func(names []string) string { return "['" + strings.Join(names, "', '") + "']" }
	set := func(obj, f string) string {
		return "(has(" + obj + ".spec." + f + ") && " + obj + ".spec." + f + " == true)"
	}
	// unchanged says that every key of the map now but those in skip is
	// in the map was with the same value, and that was has no other key.
	unchanged := func(now, was, skip string) string {
		return now + ".all(k, k in " + skip + " || (k in " + was + " && " + now + "[k] == " + was + "[k])) && " +
			was + ".all(k, k in " + skip + " || k in " + now + ")"
	}
	annotations := func(obj string) string {
		return "(has(" + obj + ".metadata.annotations) ? " + obj + ".metadata.annotations : {})"
	}
	terms := []string{
		"request.operation == 'UPDATE'",
		"has(object.spec) && has(oldObject.spec)",
		unchanged("object.metadata", "oldObject.metadata", quote(ignoredMetadata)),
		unchanged(annotations("object"), annotations("oldObject"), quote(ignoredAnnotations)),
		unchanged("object.spec", "oldObject.spec", quote(switchOffFields)),
	}
	var turned []string
	for _, f := range switchOffFields {
		// Never from true back to false.
		terms = append(terms, "!("+set("oldObject", f)+" && !"+set("object", f)+")")
		turned = append(turned, "(!"+set("oldObject", f)+" && "+set("object", f)+")")
	}
	terms = append(terms, "("+strings.Join(turned, " || ")+")")
	return strings.Join(terms, " && ")
}
