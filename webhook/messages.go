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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

// Warnings: admitted, but the user should know. kubectl prints them.
const (
	// WarnKeyGroupNotFound: an Application of a KeyGroup that does not
	// exist yet (GitOps applies objects in any order).
	WarnKeyGroupNotFound = "KeyGroup %q does not exist in namespace %s yet: the Application waits for it, and maxApplications is checked when it appears"
	// WarnApplicationOfKeyNotFound: an APIKey created before its
	// Application.
	WarnApplicationOfKeyNotFound = "Application %q does not exist yet: the key waits for it; its scopes, their grant and the limits are checked by the controller before it is issued"
	// WarnKeyGroupOfKeyNotFound: an APIKey whose application's KeyGroup
	// does not exist yet.
	WarnKeyGroupOfKeyNotFound = "KeyGroup %q of Application %q does not exist yet: the key waits for it, and is Rejected if the group lacks one of its scopes"
	// WarnAlreadyExpired: an APIKey created with an expiresAt that has
	// passed.
	WarnAlreadyExpired = "spec.expiresAt is not in the future: the key is Expired at once and never works"
	// WarnScopeRemoved: a KeyGroup scope removed while keys may hold it.
	WarnScopeRemoved = "scope %q removed: every key that holds it becomes Rejected and stops working for good"
	// WarnLimitLowered: a limit lowered below what may already be there.
	WarnLimitLowered = "%s lowered from %d to %d: what is over the new limit keeps working, and nothing new is admitted until the count is below it"
	// WarnMaxKeyLifetimeChanged: maxKeyLifetime is checked when a key is
	// created or its expiresAt changes; a rotating key's keys are held to
	// it as they are (rules.KeyEnd).
	WarnMaxKeyLifetimeChanged = "maxKeyLifetime is checked for keys created from now on; existing keys keep their expiresAt, but each key of a rotating APIKey now ends at most maxKeyLifetime after it was issued"
	// WarnPrefixHiddenFromGitleaks: a new KeyGroup whose keys gitleaks'
	// default rules never report (keys.PrefixHiddenFromGitleaks).
	WarnPrefixHiddenFromGitleaks = "spec.keyPrefix %q: gitleaks' default rules drop every secret that starts with \"true\" or holds \"false\", so the gitleaks rule of docs/secret-scanning, as shipped, would never report a leaked key of this group; the prefix cannot change once keys are issued, so choose another now (docs/leaked-keys.md, \"What scanners miss\")"
)

// Hints that end field errors: what to do instead.
const (
	hintScopesImmutable     = "field is immutable; create a new APIKey to change scopes"
	hintKeyApplication      = "field is immutable; create a new APIKey for another application"
	hintDeliveryImmutable   = "field is immutable: the key was delivered to this Secret once; copy the Secret if it must live elsewhere"
	hintRevokedKey          = "cannot be set back to false; create a new APIKey instead"
	hintExpiresAtLater      = "may move earlier, never later; create a new APIKey for a longer lifetime"
	hintExpiresAtRemoved    = "cannot be removed once set; create a new APIKey for a longer lifetime"
	hintNewApplicationGroup = "field is immutable; create a new Application to move to another KeyGroup"
	hintRevokedApplication  = "cannot be set back to false; create a new Application instead"
	hintKeyFinalizer        = "keyward.dev/hashed-key is keyward's: it deletes the key's hashed record when the key is deleted; delete the APIKey instead"
	hintExternalIDSet       = "is set once and cannot change, since backends take it as the customer's identity; create a new Application for another customer"
	hintKeyPrefix           = "field is immutable: keys already issued carry it; create a new KeyGroup for another prefix"
	hintCreatedBy           = "is set by keyward when the object is created and cannot be changed"
	hintCreatedByForged     = "is set by keyward to the user who creates the object (%q)"
	hintKeyAnnotation       = "is set by keyward when the key is created and cannot be changed"
	hintRotateRequest       = "; status.rotation.lastRotateRequest echoes the value: use a timestamp, such as 2026-11-30T12:00:00Z"
	hintKeyAnnotationForged = "is set by keyward when the key is created (the creator's identity, and the UIDs of the Application and KeyGroup it is admitted under); do not set it"
)

// Group kinds for apierrors.NewInvalid.
var (
	kindKeyGroup    = schema.GroupKind{Group: keywardv1alpha1.GroupVersion.Group, Kind: "KeyGroup"}
	kindApplication = schema.GroupKind{Group: keywardv1alpha1.GroupVersion.Group, Kind: "Application"}
	kindAPIKey      = schema.GroupKind{Group: keywardv1alpha1.GroupVersion.Group, Kind: "APIKey"}
)

// Field paths that several validators use.
var (
	specPath        = field.NewPath("spec")
	annotationsPath = field.NewPath("metadata", "annotations")
)
