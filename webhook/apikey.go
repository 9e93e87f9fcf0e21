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
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/index"
	"github.com/keyward/keyward/internal/rules"
)

// APIKeyValidator is the validating webhook of APIKeys: their rules on
// create and update, the grant of every scope, maxKeysPerApplication, and
// deletion protection.
type APIKeyValidator struct {
	lookup
	// Grants answers whether the requesting user may grant a scope.
	Grants GrantChecker
	// Clock tells the time for expiry and recent use.
	Clock clock.PassiveClock
	// MinRotationEvery is the shortest spec.rotation.every allowed;
	// DefaultMinRotationEvery when zero.
	MinRotationEvery time.Duration
	// Book holds each application's keys, as the cache shows them.
	Book *index.Book
}

// DefaultMinRotationEvery is the shortest spec.rotation.every allowed
// unless the manager says otherwise.
const DefaultMinRotationEvery = time.Hour

func (v *APIKeyValidator) minRotationEvery() time.Duration {
	if v.MinRotationEvery > 0 {
		return v.MinRotationEvery
	}
	return DefaultMinRotationEvery
}

var _ admission.Validator[*keywardv1alpha1.APIKey] = &APIKeyValidator{}

// keyContext is what an APIKey's rules depend on besides the key itself.
type keyContext struct {
	// app and group are the key's Application and its KeyGroup; nil when
	// they do not exist.
	app   *keywardv1alpha1.Application
	group *keywardv1alpha1.KeyGroup
	now   time.Time
	// user made the request; nil when not known.
	user *authenticationv1.UserInfo
	// minRotationEvery is the shortest spec.rotation.every allowed.
	minRotationEvery time.Duration
}

func (v *APIKeyValidator) context(ctx context.Context, k *keywardv1alpha1.APIKey) (keyContext, error) {
	app, group, err := v.applicationAndGroup(ctx, k.Namespace, string(k.Spec.Application))
	if err != nil {
		return keyContext{}, err
	}
	return keyContext{app: app, group: group, now: v.Clock.Now(), user: requestUser(ctx), minRotationEvery: v.minRotationEvery()}, nil
}

// ValidateCreate checks a new APIKey: its fields, the grant of each of its
// scopes and its application's maxKeysPerApplication.
func (v *APIKeyValidator) ValidateCreate(ctx context.Context, k *keywardv1alpha1.APIKey) (admission.Warnings, error) {
	in, err := v.context(ctx, k)
	if err != nil {
		return nil, internalError(err)
	}
	val := validateAPIKey(nil, k, in)
	if in.app == nil {
		// GitOps applies an Application and its keys together, in any
		// order: the controller checks the grant, with the identity the
		// mutating webhook recorded, once the Application exists.
		val.warn(WarnApplicationOfKeyNotFound, k.Spec.Application)
		return result(kindAPIKey, k.Name, val)
	}
	if !rules.ApplicationUsable(in.app) {
		return result(kindAPIKey, k.Name, val) // nothing more to ask
	}
	if in.group == nil {
		val.warn(WarnKeyGroupOfKeyNotFound, in.app.Spec.KeyGroup, in.app.Name)
	} else if rules.KeyOccupiesSlot(k, in.group, in.now) {
		n, err := v.countKeys(ctx, k, in)
		if err != nil {
			return nil, internalError(err)
		}
		val.errs = append(val.errs, keyLimit(in.app, in.group, n)...)
	}
	if in.user != nil && v.Grants != nil {
		errs, err := checkGrants(ctx, v.Grants, k, in)
		if err != nil {
			return nil, internalError(err)
		}
		val.errs = append(val.errs, errs...)
	}
	return result(kindAPIKey, k.Name, val)
}

// ValidateUpdate checks a change to an APIKey.
func (v *APIKeyValidator) ValidateUpdate(ctx context.Context, old, k *keywardv1alpha1.APIKey) (admission.Warnings, error) {
	var in keyContext
	if !old.Spec.ExpiresAt.Equal(k.Spec.ExpiresAt) || !slices.Equal(old.Spec.AllowedSourceRanges, k.Spec.AllowedSourceRanges) ||
		!equality.Semantic.DeepEqual(old.Spec.Rotation, k.Spec.Rotation) {
		// Only a changed expiry, source ranges or rotation are checked
		// against the group again.
		var err error
		if in, err = v.context(ctx, k); err != nil {
			return nil, internalError(err)
		}
	}
	in.now, in.minRotationEvery, in.user = v.Clock.Now(), v.minRotationEvery(), requestUser(ctx)
	val := validateAPIKey(old, k, in)
	if RotationRequested(old, k) && in.user != nil && v.Grants != nil {
		// A rotation issues a new key of the key's scopes: who asks for
		// one must be able to grant them, as who creates a key must.
		if in.app == nil {
			var err error
			if in.app, in.group, err = v.applicationAndGroup(ctx, k.Namespace, string(k.Spec.Application)); err != nil {
				return nil, internalError(err)
			}
		}
		if in.app != nil {
			errs, err := checkRotationGrants(ctx, v.Grants, old, k, in)
			if err != nil {
				return nil, internalError(err)
			}
			val.errs = append(val.errs, errs...)
		}
	}
	return result(kindAPIKey, k.Name, val)
}

// ValidateDelete asks for the keyward.dev/confirm-delete annotation when
// the group's deletionProtection calls for it. Deleting a namespace
// deletes its keys without asking: deleting the namespace was the
// confirmation.
func (v *APIKeyValidator) ValidateDelete(ctx context.Context, k *keywardv1alpha1.APIKey) (admission.Warnings, error) {
	if !k.DeletionTimestamp.IsZero() {
		return nil, nil // being deleted already: confirmed then
	}
	in, err := v.context(ctx, k)
	if err != nil {
		return nil, internalError(err)
	}
	errs := validateAPIKeyDelete(k, in)
	if len(errs) == 0 {
		return nil, nil
	}
	ns := &corev1.Namespace{}
	if err := v.live.Get(ctx, client.ObjectKey{Name: k.Namespace}, ns); err == nil && !ns.DeletionTimestamp.IsZero() {
		logf.FromContext(ctx).V(1).Info("Deleting a protected key with its namespace", "apikey", klog.KObj(k))
		return nil, nil
	}
	return result(kindAPIKey, k.Name, validation{errs: errs})
}

// validateAPIKey checks an APIKey being created (old nil) or changed.
func validateAPIKey(old, k *keywardv1alpha1.APIKey, in keyContext) validation {
	if old == nil {
		return validateNewAPIKey(k, in)
	}
	return validateAPIKeyChange(old, k, in)
}

// validateNewAPIKey checks an APIKey being created.
func validateNewAPIKey(k *keywardv1alpha1.APIKey, in keyContext) validation {
	var v validation
	v.errs = append(v.errs, validateCreatedBy(nil, k, in.user)...)
	v.errs = append(v.errs, validateKeyAnnotations(nil, k, in.user, in.app, in.group)...)
	v.errs = append(v.errs, validateApplicationOfKey(k, in.app)...)
	if in.group != nil {
		v.errs = append(v.errs, validateScopes(k, in.group)...)
		v.errs = append(v.errs, validateLifetime(k, in.group, in.now)...)
		v.errs = append(v.errs, validateSourceRanges(k, in.group)...)
	}
	v.errs = append(v.errs, validateRotation(k, in.minRotationEvery)...)
	v.errs = append(v.errs, validateRotateRequest(nil, k)...)
	if k.Spec.ExpiresAt != nil && !k.Spec.ExpiresAt.After(in.now) {
		v.warn(WarnAlreadyExpired)
	}
	return v
}

// validateRotateRequest refuses a new keyward.dev/rotate value that status
// could not echo safely (rules.RotateRequestProblem). A value already there
// stays, whatever it is.
func validateRotateRequest(old, k *keywardv1alpha1.APIKey) field.ErrorList {
	v, ok := k.Annotations[keywardv1alpha1.AnnotationRotate]
	if !ok || (old != nil && old.Annotations[keywardv1alpha1.AnnotationRotate] == v) {
		return nil
	}
	p := annotationsPath.Key(keywardv1alpha1.AnnotationRotate)
	if len(v) > rules.MaxRotateRequest {
		return field.ErrorList{field.TooLong(p, "", rules.MaxRotateRequest)}
	}
	if why := rules.RotateRequestProblem(v); why != "" {
		return field.ErrorList{field.Invalid(p, v, why+hintRotateRequest)}
	}
	return nil
}

// validateAPIKeyChange checks a change to an APIKey: immutable and one-way
// fields, and what changed against the group (in.group, when loaded).
func validateAPIKeyChange(old, k *keywardv1alpha1.APIKey, in keyContext) validation {
	var v validation
	spec, os, ns := specPath, old.Spec, k.Spec
	if os.Application != ns.Application {
		v.errs = append(v.errs, field.Forbidden(spec.Child("application"), hintKeyApplication))
	}
	if !scopesEqual(os.Scopes, ns.Scopes) {
		v.errs = append(v.errs, field.Forbidden(spec.Child("scopes"), hintScopesImmutable))
	}
	if os.SecretName != ns.SecretName {
		v.errs = append(v.errs, field.Forbidden(spec.Child("secretName"), hintDeliveryImmutable))
	}
	if os.Revoked && !ns.Revoked {
		v.errs = append(v.errs, field.Forbidden(spec.Child("revoked"), hintRevokedKey))
	}
	switch was, is := os.ExpiresAt, ns.ExpiresAt; {
	case was == nil:
	case is == nil:
		v.errs = append(v.errs, field.Forbidden(spec.Child("expiresAt"), hintExpiresAtRemoved))
	case is.After(was.Time):
		v.errs = append(v.errs, field.Invalid(spec.Child("expiresAt"), is.UTC().Format(time.RFC3339),
			fmt.Sprintf("%s (it is %s)", hintExpiresAtLater, was.UTC().Format(time.RFC3339))))
	}
	if in.group != nil && (!os.ExpiresAt.Equal(ns.ExpiresAt) || !equality.Semantic.DeepEqual(os.Rotation, ns.Rotation)) {
		v.errs = append(v.errs, validateLifetime(k, in.group, in.now)...)
	}
	if !equality.Semantic.DeepEqual(os.Rotation, ns.Rotation) {
		v.errs = append(v.errs, validateRotation(k, in.minRotationEvery)...)
	}
	if in.group != nil && !slices.Equal(os.AllowedSourceRanges, ns.AllowedSourceRanges) {
		v.errs = append(v.errs, validateSourceRanges(k, in.group)...)
	}
	v.errs = append(v.errs, validateKeyMetadataChange(old, k)...)
	v.errs = append(v.errs, validateRotationRequester(old, k, in.user)...)
	v.errs = append(v.errs, validateRotateRequest(old, k)...)
	return v
}

// validateKeyMetadataChange checks what keyward owns in a key's metadata:
// the creator and binding annotations never change, and the finalizer that
// deletes the key's hashed record is removed by keyward only, once the key
// is being deleted.
func validateKeyMetadataChange(old, k *keywardv1alpha1.APIKey) field.ErrorList {
	errs := validateCreatedBy(old, k, nil)
	errs = append(errs, validateKeyAnnotations(old, k, nil, nil, nil)...)
	if controllerutil.ContainsFinalizer(old, keywardv1alpha1.Finalizer) && !controllerutil.ContainsFinalizer(k, keywardv1alpha1.Finalizer) && old.DeletionTimestamp.IsZero() {
		errs = append(errs, field.Forbidden(field.NewPath("metadata", "finalizers"), hintKeyFinalizer))
	}
	return errs
}

// validateApplicationOfKey refuses a key whose application can hold no
// working key. A key whose application does not exist yet is let through:
// it waits for it, and the controller checks the grant of its scopes.
func validateApplicationOfKey(_ *keywardv1alpha1.APIKey, app *keywardv1alpha1.Application) field.ErrorList {
	p := specPath.Child("application")
	switch {
	case app == nil:
		return nil
	case !app.DeletionTimestamp.IsZero():
		return field.ErrorList{field.Forbidden(p, fmt.Sprintf("Application %q is being deleted: none of its keys can work", app.Name))}
	case rules.ApplicationRevoked(app):
		return field.ErrorList{field.Forbidden(p, fmt.Sprintf("Application %q is revoked: none of its keys can work", app.Name))}
	case app.Status.Phase == keywardv1alpha1.ApplicationRejected:
		return field.ErrorList{field.Forbidden(p, fmt.Sprintf("Application %q was rejected (over its KeyGroup's maxApplications): none of its keys can work; use an Active application", app.Name))}
	}
	return nil
}

// validateScopes refuses scopes the group does not define.
func validateScopes(k *keywardv1alpha1.APIKey, g *keywardv1alpha1.KeyGroup) field.ErrorList {
	missing := rules.MissingScopes(k, g)
	var errs field.ErrorList
	for i, s := range k.Spec.Scopes {
		if slices.Contains(missing, string(s)) {
			errs = append(errs, field.NotSupported(specPath.Child("scopes").Index(i), string(s), scopeNames(g)))
		}
	}
	return errs
}

func scopeNames(g *keywardv1alpha1.KeyGroup) []string {
	names := make([]string, 0, len(g.Spec.Scopes))
	for _, s := range g.Spec.Scopes {
		names = append(names, string(s.Name))
	}
	return names
}

// validateSourceRanges keeps a key's own allowedSourceRanges within its
// group's, when the group sets any.
func validateSourceRanges(k *keywardv1alpha1.APIKey, g *keywardv1alpha1.KeyGroup) field.ErrorList {
	var errs field.ErrorList
	for _, i := range rules.SourceRangesOutside(k.Spec.AllowedSourceRanges, g.Spec.AllowedSourceRanges) {
		errs = append(errs, field.Invalid(specPath.Child("allowedSourceRanges").Index(i), string(k.Spec.AllowedSourceRanges[i]), fmt.Sprintf(
			"is not within the allowedSourceRanges of KeyGroup %q (%s); use ranges inside them, or none to inherit the group's", g.Name, joinCIDRs(g.Spec.AllowedSourceRanges))))
	}
	return errs
}

func joinCIDRs(cidrs []keywardv1alpha1.CIDR) string {
	s := make([]string, len(cidrs))
	for i, c := range cidrs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

// validateLifetime keeps a key's expiresAt within its group's
// maxKeyLifetime (rules.KeyLifetime).
func validateLifetime(k *keywardv1alpha1.APIKey, g *keywardv1alpha1.KeyGroup, now time.Time) field.ErrorList {
	l := rules.KeyLifetime(k, g, now)
	latest := l.Latest.UTC().Format(time.RFC3339)
	p := specPath.Child("expiresAt")
	switch {
	case l.Unset:
		return field.ErrorList{field.Required(p, fmt.Sprintf(
			"KeyGroup %q sets maxKeyLifetime %s: set expiresAt, no later than %s, or set spec.rotation so that each key works at most that long", g.Name, l.Max, latest))}
	case l.TooLate:
		return field.ErrorList{field.Invalid(p, k.Spec.ExpiresAt.UTC().Format(time.RFC3339), fmt.Sprintf(
			"is more than maxKeyLifetime %s of KeyGroup %q after the key's creation; set it no later than %s", l.Max, g.Name, latest))}
	case l.RotationTooLong:
		return field.ErrorList{field.Invalid(specPath.Child("rotation", "every"), k.Spec.Rotation.Every.Duration.String(), fmt.Sprintf(
			"every + overlap (%s) is more than maxKeyLifetime %s of KeyGroup %q: each key works for every, then overlap more; shorten every or overlap",
			l.Rotated, l.Max, g.Name))}
	}
	return nil
}

// validateRotation keeps a key's rotation no more frequent than the
// manager's --min-rotation-every allows.
func validateRotation(k *keywardv1alpha1.APIKey, minEvery time.Duration) field.ErrorList {
	rot := k.Spec.Rotation
	if rot == nil {
		return nil
	}
	var errs field.ErrorList
	every := specPath.Child("rotation", "every")
	switch {
	case rot.Every.Duration == 0:
		errs = append(errs, field.Required(every, "set how long each key works before its successor is minted, such as 2160h for 90 days"))
	case rot.Every.Duration < minEvery:
		errs = append(errs, field.Invalid(every, rot.Every.Duration.String(), fmt.Sprintf(
			"is shorter than %s, the shortest rotation this keyward allows (the manager's --min-rotation-every); rotate less often", minEvery)))
	}
	if o := rot.Overlap; o != nil && o.Duration < MinRotationOverlap {
		errs = append(errs, field.Invalid(specPath.Child("rotation", "overlap"), o.Duration.String(), fmt.Sprintf(
			"is shorter than %s: the previous key keeps working this long after a rotation, for consumers to pick up the new one; omit it for %s",
			MinRotationOverlap, keywardv1alpha1.DefaultRotationOverlap)))
	}
	return errs
}

// MinRotationOverlap is the shortest spec.rotation.overlap allowed: a
// rotation's successor is promoted to api-key a moment after it is live,
// and consumers need time to read it before the previous key ends.
const MinRotationOverlap = time.Minute

// validateAPIKeyDelete asks for the confirmation annotation when the key's
// group protects it: always, or when it was used within recentUseWindow.
// A key without application or group works nowhere and needs none.
func validateAPIKeyDelete(k *keywardv1alpha1.APIKey, in keyContext) field.ErrorList {
	if in.app == nil || in.group == nil {
		return nil
	}
	g := in.group
	c := rules.DeletionConfirmation(g, []*metav1.Time{k.LastUsed()}, in.now)
	if !c.Needed {
		return nil
	}
	why := fmt.Sprintf("KeyGroup %q asks to confirm deleting any of its keys", g.Name)
	if !c.Always {
		why = fmt.Sprintf("KeyGroup %q asks to confirm deleting keys used within %s, and this key was last used at %s",
			g.Name, c.Window, c.LastUsed.UTC().Format(time.RFC3339))
	}
	what := fmt.Sprintf("the externalID of Application %q", in.app.Name)
	if in.app.Spec.ExternalID == "" {
		what = fmt.Sprintf("the name of Application %q, which has no externalID", in.app.Name)
	}
	p := annotationsPath.Key(keywardv1alpha1.AnnotationConfirmDelete)
	switch got := k.Annotations[keywardv1alpha1.AnnotationConfirmDelete]; {
	case got == "":
		return field.ErrorList{field.Required(p, fmt.Sprintf("%s: set this annotation to %s, then delete again", why, what))}
	case got != in.app.ConfirmationValue():
		return field.ErrorList{field.Invalid(p, got, fmt.Sprintf("%s: must be %s", why, what))}
	}
	return nil
}

// keyLimit refuses one more key when the application already holds n that
// count against its group's maxKeysPerApplication.
func keyLimit(app *keywardv1alpha1.Application, g *keywardv1alpha1.KeyGroup, n int) field.ErrorList {
	limit := g.MaxKeysPerApplication()
	if n < limit {
		return nil
	}
	return field.ErrorList{field.Forbidden(specPath.Child("application"), fmt.Sprintf(
		"Application %q already has %d/%d keys that count against maxKeysPerApplication of KeyGroup %q (Active, Disabled and being issued; revoked and expired keys do not count); "+
			"revoke or delete one of its keys, or raise spec.limits.maxKeysPerApplication of the group", app.Name, n, limit, g.Name))}
}

// countKeys counts, from the cache's book, the keys of k's application
// other than k that hold or are about to hold a slot. An application with
// fewer keys in all than its limit is under it whatever they are: then the
// count is their number, and they are not looked at one by one. A manager
// just started waits for its book to take in the cache's first lists.
func (v *APIKeyValidator) countKeys(ctx context.Context, k *keywardv1alpha1.APIKey, in keyContext) (int, error) {
	if err := v.Book.WaitForSynced(ctx, index.SyncWait); err != nil {
		return 0, err
	}
	n := 0
	v.Book.Read(k.Namespace, in.app.Name, func(sib index.Siblings) {
		if len(sib.Keys) < in.group.MaxKeysPerApplication() {
			n = len(sib.Keys)
			return
		}
		for _, o := range sib.Keys {
			if o.Name != k.Name && rules.KeyOccupiesSlot(o, in.group, in.now) {
				n++
			}
		}
	})
	return n, nil
}

// scopesEqual compares scopes as the set they are (listType=set).
func scopesEqual(a, b []keywardv1alpha1.ScopeName) bool {
	return sets.New(a...).Equal(sets.New(b...))
}
