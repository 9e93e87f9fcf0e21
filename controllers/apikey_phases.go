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

package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/grants"
	"github.com/keyward/keyward/internal/index"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/internal/rules"
)

// Condition reasons of an APIKey's Ready condition.
const (
	ReasonActive                 = "Active"
	ReasonDisabled               = "Disabled"
	ReasonRevoked                = "Revoked"
	ReasonApplicationRevoked     = "ApplicationRevoked"
	ReasonApplicationRejected    = "ApplicationRejected"
	ReasonApplicationPending     = "ApplicationPending"
	ReasonApplicationNotFound    = "ApplicationNotFound"
	ReasonKeyGroupNotFound       = "KeyGroupNotFound"
	ReasonScopeNotFound          = "ScopeNotFound"
	ReasonExpired                = "Expired"
	ReasonLifetimeExceeded       = "LifetimeExceeded"
	ReasonLimitExceeded          = "LimitExceeded"
	ReasonWaitingForOlderKeys    = "WaitingForOlderKeys"
	ReasonDeliverySecretConflict = "DeliverySecretConflict"
	ReasonKeyLost                = "KeyLost"
	ReasonScopeNotGranted        = "ScopeNotGranted"
	ReasonApplicationReplaced    = "ApplicationReplaced"
	ReasonKeyGroupReplaced       = "KeyGroupReplaced"
	ReasonRecordDamaged          = "RecordDamaged"
	ReasonDeleting               = "Deleting"
)

// load fetches what the key's phase depends on: its Application, the
// Application's KeyGroup and the key's hashed Secret, all from the cache.
func (r *APIKeyReconciler) load(ctx context.Context, s *apiKeyScope) error {
	ns := s.key.Namespace
	app := &keywardv1alpha1.Application{}
	switch err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: string(s.key.Spec.Application)}, app); {
	case err == nil:
		// An Application being deleted, held by a finalizer or not, is
		// gone for its keys, as a KeyGroup being deleted is.
		if app.DeletionTimestamp.IsZero() {
			s.app = app
		}
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("getting Application %s/%s: %w", ns, s.key.Spec.Application, err)
	}
	if s.app != nil {
		group := &keywardv1alpha1.KeyGroup{}
		switch err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: string(s.app.Spec.KeyGroup)}, group); {
		case err == nil:
			if group.DeletionTimestamp.IsZero() {
				s.group = group
			}
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("getting KeyGroup %s/%s: %w", ns, s.app.Spec.KeyGroup, err)
		}
	}
	hashed := &corev1.Secret{}
	switch err := r.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: record.SecretName(string(s.key.UID))}, hashed); {
	case err == nil:
		s.hashed = hashed
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("getting the hashed Secret of APIKey %s/%s: %w", ns, s.key.Name, err)
	}
	s.bound = boundParents(s.key, s.hashed)
	return nil
}

// binding names the parents a key is bound to; an empty field binds
// nothing (yet).
type binding struct {
	application, groupUID string
	// group is the KeyGroup's name, for a key minted before keys were
	// bound by UID: its record names the group it was issued for.
	group string
}

// boundParents is what the key is bound to: once minted, the UIDs its
// hashed Secret records (only keyward writes there); before, the UIDs the
// mutating webhook recorded when it admitted the key.
func boundParents(k *keywardv1alpha1.APIKey, hashed *corev1.Secret) binding {
	if hashed != nil {
		return binding{
			application: string(hashed.Data[record.DataApplicationUID]),
			groupUID:    string(hashed.Data[record.DataKeyGroupUID]),
			group:       string(hashed.Data[record.DataKeyGroup]),
		}
	}
	return binding{
		application: k.Annotations[keywardv1alpha1.AnnotationApplicationUID],
		groupUID:    k.Annotations[keywardv1alpha1.AnnotationKeyGroupUID],
	}
}

// decide sets the phase the key should be in. Revoked, Expired and Rejected
// are terminal: once reached, they stay.
func (r *APIKeyReconciler) decide(_ context.Context, s *apiKeyScope) error {
	k := s.key
	if p, ok := s.terminal(); ok {
		reason, message := string(p), "the key's hashed Secret records it as "+strings.ToLower(string(p))
		if k.Status.Phase == p {
			reason, message = readyReason(k), readyMessage(k)
		}
		s.set(p, reason, message)
		return nil
	}
	expiresAt := k.Spec.ExpiresAt
	switch {
	case k.Spec.Revoked:
		s.set(keywardv1alpha1.APIKeyRevoked, ReasonRevoked, "spec.revoked is true; the key no longer works")
	case !s.decideParents():
		// The application or the group decided it.
	case len(rules.MissingScopes(k, s.group)) > 0:
		s.set(keywardv1alpha1.APIKeyRejected, ReasonScopeNotFound, fmt.Sprintf("KeyGroup %s has no scope %s; create a new APIKey with scopes from spec.scopes of the group",
			s.group.Name, strings.Join(rules.MissingScopes(k, s.group), ", ")))
	case expiresAt != nil && !expiresAt.After(s.now):
		s.set(keywardv1alpha1.APIKeyExpired, ReasonExpired, "the key expired at "+expiresAt.UTC().Format(time.RFC3339))
	case !s.minted() && !rules.KeyLifetime(k, s.group, s.now).OK():
		s.set(keywardv1alpha1.APIKeyRejected, ReasonLifetimeExceeded, lifetimeMessage(s.group, rules.KeyLifetime(k, s.group, s.now)))
	case !s.minted() && !rules.ApplicationAdmittedTo(s.app, s.group):
		s.set(keywardv1alpha1.APIKeyPending, ReasonApplicationPending, fmt.Sprintf("waiting for Application %s to become Active", s.app.Name))
	case k.Spec.Disabled:
		s.set(keywardv1alpha1.APIKeyDisabled, ReasonDisabled, "spec.disabled is true; set it to false to switch the key on")
	default:
		s.set(keywardv1alpha1.APIKeyActive, ReasonActive, activeMessage(k, s.group))
	}
	if expiresAt != nil && !s.phase.Terminal() {
		s.requeue = expiresAt.Sub(s.now)
	}
	return nil
}

// terminal returns the phase a key can never leave, if it is in one. A
// minted key's comes from its hashed Secret, which only keyward writes; the
// status, which others may be able to write, speaks only for keys that were
// never minted. So a forged status.phase cannot switch a working key off.
func (s *apiKeyScope) terminal() (keywardv1alpha1.APIKeyPhase, bool) {
	if s.minted() {
		switch record.State(s.hashed.Data[record.DataState]) {
		case record.StateRevoked:
			return keywardv1alpha1.APIKeyRevoked, true
		case record.StateExpired:
			return keywardv1alpha1.APIKeyExpired, true
		case record.StateRejected:
			return keywardv1alpha1.APIKeyRejected, true
		}
		return "", false
	}
	p := s.key.Status.Phase
	return p, p.Terminal()
}

// decideParents sets the phase when the application or the group alone
// decides it (missing, revoked, rejected) and reports whether the key's own
// checks come next.
func (s *apiKeyScope) decideParents() bool {
	k := s.key
	switch {
	case s.app == nil:
		s.setMissing(ReasonApplicationNotFound,
			fmt.Sprintf("Application %q does not exist in namespace %s", k.Spec.Application, k.Namespace),
			fmt.Sprintf("Application %q of namespace %s was deleted after the key was issued", k.Spec.Application, k.Namespace))
	case rules.ParentReplaced(s.bound.application, string(s.app.UID)):
		s.set(keywardv1alpha1.APIKeyRejected, ReasonApplicationReplaced, fmt.Sprintf(
			"Application %s was deleted and created again after the key was admitted under it; a key never moves to a new Application: create a new APIKey", s.app.Name))
	case s.bound.group != "" && s.bound.group != string(s.app.Spec.KeyGroup):
		s.set(keywardv1alpha1.APIKeyRejected, ReasonApplicationReplaced, fmt.Sprintf(
			"Application %s now belongs to KeyGroup %s, not to KeyGroup %s the key was issued for; a key never moves to another KeyGroup: create a new APIKey",
			s.app.Name, s.app.Spec.KeyGroup, s.bound.group))
	case rules.ApplicationRevoked(s.app):
		s.set(keywardv1alpha1.APIKeyRevoked, ReasonApplicationRevoked, fmt.Sprintf("Application %s is revoked; none of its keys work", s.app.Name))
	case s.app.Status.Phase == keywardv1alpha1.ApplicationRejected:
		s.set(keywardv1alpha1.APIKeyRejected, ReasonApplicationRejected, fmt.Sprintf("Application %s was rejected; none of its keys work", s.app.Name))
	case s.group == nil:
		s.setMissing(ReasonKeyGroupNotFound,
			fmt.Sprintf("KeyGroup %q of Application %s does not exist", s.app.Spec.KeyGroup, s.app.Name),
			fmt.Sprintf("KeyGroup %q of Application %s was deleted after the key was issued", s.app.Spec.KeyGroup, s.app.Name))
	case rules.ParentReplaced(s.bound.groupUID, string(s.group.UID)):
		s.set(keywardv1alpha1.APIKeyRejected, ReasonKeyGroupReplaced, fmt.Sprintf(
			"KeyGroup %s was deleted and created again after the key was admitted under it; a key never moves to a new KeyGroup: create a new APIKey", s.group.Name))
	default:
		return true
	}
	return false
}

func (s *apiKeyScope) set(p keywardv1alpha1.APIKeyPhase, reason, message string) {
	s.phase, s.reason, s.message = p, reason, message
}

// setMissing handles an Application or KeyGroup that is not there: a key not
// yet minted waits for it (GitOps applies objects in any order), a minted
// key is Rejected for good.
func (s *apiKeyScope) setMissing(reason, missing, deleted string) {
	if s.minted() {
		// Rejected is terminal, so the message is kept after the parent is
		// created again: it must still read true then.
		s.set(keywardv1alpha1.APIKeyRejected, reason, deleted+
			"; the key no longer works, and one created again under that name does not revive it: create a new APIKey")
		return
	}
	s.set(keywardv1alpha1.APIKeyPending, reason, missing+"; waiting for it")
}

// activeMessage is an Active key's Ready message: it works, and, when the
// group's allowedSourceRanges were narrowed since the key was admitted,
// from where it does not (the verifier holds it to both lists).
func activeMessage(k *keywardv1alpha1.APIKey, g *keywardv1alpha1.KeyGroup) string {
	outside := rules.SourceRangesOutside(k.Spec.AllowedSourceRanges, g.Spec.AllowedSourceRanges)
	if len(outside) == 0 {
		return "the key works"
	}
	ranges := make([]string, len(outside))
	for i, j := range outside {
		ranges[i] = string(k.Spec.AllowedSourceRanges[j])
	}
	return fmt.Sprintf("the key works only where its spec.allowedSourceRanges meet KeyGroup %s's allowedSourceRanges, which were narrowed since: %s is not within them, and requests from outside them are refused (403 source); set the key's ranges within the group's",
		g.Name, strings.Join(ranges, ", "))
}

// lifetimeMessage says why a key breaks its group's maxKeyLifetime.
func lifetimeMessage(g *keywardv1alpha1.KeyGroup, l rules.Lifetime) string {
	if l.Unset {
		return fmt.Sprintf("KeyGroup %s sets maxKeyLifetime %s; set spec.expiresAt within it, or spec.rotation so that each key works at most that long", g.Name, l.Max)
	}
	return fmt.Sprintf("spec.expiresAt is more than maxKeyLifetime %s of KeyGroup %s after the key's creation; create a new APIKey that expires sooner", l.Max, g.Name)
}

// issue admits, mints and delivers a key that should work and has not been
// minted yet. Decisions for one application are serialised; a key admitted
// is reserved before its lock is released, so that concurrent keys can never
// overshoot the limit while they mint in parallel.
func (r *APIKeyReconciler) issue(ctx context.Context, s *apiKeyScope) error {
	if s.minted() || (s.phase != keywardv1alpha1.APIKeyActive && s.phase != keywardv1alpha1.APIKeyDisabled) {
		return nil
	}
	app := index.ApplicationKey(s.key.Namespace, s.app.Name)
	admitted, err := r.admit(ctx, s, app)
	if err != nil || !admitted {
		return err
	}
	// Nothing minted (an error, a panic, a refusal), or unknown whether
	// it was: the reservation goes, and the live lists of the next
	// decision near the limit are the judge.
	defer func() {
		if !s.minted() {
			r.reserved.remove(app, s.key.UID)
		}
	}()
	// Only for a key that has a slot, so that a key waiting for older
	// ones does not ask every second.
	if granted, err := r.checkGrants(ctx, s); err != nil || !granted {
		return err
	}
	return r.mint(ctx, s)
}

// checkGrants checks, just before minting, that the key's creator may
// grant each of its scopes (creatorMayGrant); if not, the key is Rejected.
// Admission checked the grant too, but against the group of that moment.
func (r *APIKeyReconciler) checkGrants(ctx context.Context, s *apiKeyScope) (bool, error) {
	ok, why, err := r.creatorMayGrant(ctx, s)
	if err != nil || ok {
		return ok, err
	}
	if minted, err := r.mintedLive(ctx, s); err != nil || minted {
		return false, err
	}
	s.set(keywardv1alpha1.APIKeyRejected, ReasonScopeNotGranted, why)
	return false, nil
}

// mintedLive reports whether the API server holds the key's hashed Secret,
// and if so puts it in s.hashed: a reconcile the cache has not caught up
// with may have minted the key a moment ago. The cache lags, never leads,
// so a key it shows unminted is minted only if the API server says so;
// every refusal to mint asks first, so that a minted key is never refused.
func (r *APIKeyReconciler) mintedLive(ctx context.Context, s *apiKeyScope) (bool, error) {
	hashed := &corev1.Secret{}
	switch err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: record.SecretName(string(s.key.UID))}, hashed); {
	case err == nil:
		s.hashed = hashed // publish, the next phase, syncs it
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("getting the hashed Secret of APIKey %s/%s: %w", s.key.Namespace, s.key.Name, err)
	}
}

// creatorMayGrant asks whether the key's creator (the identity the mutating
// webhook recorded in keyward.dev/grant-check) may grant each of its scopes
// of the KeyGroup it is minted, or rotated, for; if not, why says so and
// what to do. Minting and every rotation ask.
func (r *APIKeyReconciler) creatorMayGrant(ctx context.Context, s *apiKeyScope) (ok bool, why string, err error) {
	v, ok := s.key.Annotations[keywardv1alpha1.AnnotationGrantCheck]
	who := "who created the key"
	if !ok && s.minted() {
		who = "who asked for the rotation of a key issued by an earlier keyward"
		// Issued by a release that did not record every creator: the
		// user who asked for the rotation answers for it instead.
		v, ok = s.key.Annotations[keywardv1alpha1.AnnotationRotationRequestedBy]
		if !ok {
			return false, fmt.Sprintf(
				"the key was issued by an earlier keyward, which did not record its creator (annotation %s): a rotation is checked against the grant of whoever asks for it; "+
					"set a new %s value, or spec.rotation, as a user who may grant its scopes",
				keywardv1alpha1.AnnotationGrantCheck, keywardv1alpha1.AnnotationRotate), nil
		}
	}
	if !ok {
		return false, fmt.Sprintf(
			"the key has no recorded creator (annotation %s, set by the admission webhook), so the grant of its scopes cannot be checked; create the APIKey again",
			keywardv1alpha1.AnnotationGrantCheck), nil
	}
	user, err := grants.ParseIdentity(v)
	if err != nil {
		return false, err.Error() + "; create the APIKey again", nil
	}
	// A key admitted before its Application existed is minted for the
	// KeyGroup that Application names: whoever created the Application
	// chose it. Only the key's own creator may make that choice, or a
	// user without grants could have a key granted by someone else minted
	// for the group of their choosing.
	if !s.minted() && s.bound.application == "" {
		if by := s.app.Annotations[keywardv1alpha1.AnnotationCreatedBy]; by != user.Username {
			return false, fmt.Sprintf(
				"the key was created by %q before Application %s existed, and the Application was then created by %q: "+
					"a key created before its Application is issued only when the same user creates both; create the APIKey again now that the Application exists",
				user.Username, s.app.Name, by), nil
		}
	}
	return r.mayGrantScopes(ctx, s, user, who, "create a new APIKey as a user who may")
}

// rotationMayGrant asks, before a rotation, what creatorMayGrant asks and
// also whether the user who asked for the rotation (recorded by the
// mutating webhook in keyward.dev/rotation-requested-by) may grant each of
// the key's scopes: a rotation issues a new key, and one asked for by a
// user who may read the delivery Secret would otherwise hand them a key of
// scopes they may not grant.
func (r *APIKeyReconciler) rotationMayGrant(ctx context.Context, s *apiKeyScope) (ok bool, why string, err error) {
	if ok, why, err := r.creatorMayGrant(ctx, s); err != nil || !ok {
		return ok, why, err
	}
	v, asked := s.key.Annotations[keywardv1alpha1.AnnotationRotationRequestedBy]
	if _, created := s.key.Annotations[keywardv1alpha1.AnnotationGrantCheck]; !asked || !created {
		return true, "", nil // none asked, or creatorMayGrant asked them
	}
	user, err := grants.ParseIdentity(v)
	if err != nil {
		return false, fmt.Sprintf("annotation %s does not hold an identity; ask for the rotation again", keywardv1alpha1.AnnotationRotationRequestedBy), nil
	}
	return r.mayGrantScopes(ctx, s, user, "who asked for the rotation", "ask for the rotation as a user who may, or revoke the key and create a new one")
}

// mayGrantScopes asks whether user (described as who) may grant each of
// the key's scopes of its KeyGroup; if not, why names the permission and
// ends with what to do.
func (r *APIKeyReconciler) mayGrantScopes(ctx context.Context, s *apiKeyScope, user authenticationv1.UserInfo, who, todo string) (ok bool, why string, err error) {
	group := s.group.Name
	for _, sc := range s.key.Spec.Scopes {
		ok, err := r.grants.CanGrant(ctx, user, s.key.Namespace, group, string(sc))
		if err != nil {
			return false, "", err
		}
		if !ok {
			return false, fmt.Sprintf("user %q, %s, may not grant scope %q of KeyGroup %s: needs %s; %s",
				user.Username, who, sc, group, grants.Permission(s.key.Namespace, group, string(sc)), todo), nil
		}
	}
	return true, "", nil
}

// admit decides, under the application's lock, whether the key gets a slot
// against maxKeysPerApplication, and reserves it if so. A key given a slot
// costs no request to the API server unless it is near the limit.
func (r *APIKeyReconciler) admit(ctx context.Context, s *apiKeyScope, app string) (bool, error) {
	// Every key created before this one is in the book once this one is.
	if err := r.book.WaitForKey(ctx, s.key.Namespace, s.app.Name, s.key.UID, index.SyncWait); err != nil {
		return false, err
	}
	unlock := r.locks.Lock("application/" + app)
	defer unlock()

	limit := s.group.MaxKeysPerApplication()
	// Far from the limit, the cache and this manager's reservations give
	// a count that can only be too high; near it, the API server decides,
	// so that a key is never turned away for a count that was stale.
	active, waiting, err := r.slots(ctx, s, app, false)
	if err != nil {
		return false, err
	}
	if active+waiting >= limit-nearLimit(limit) {
		if active, waiting, err = r.slots(ctx, s, app, true); err != nil {
			return false, err
		}
	}
	if active+waiting < limit {
		r.reserved.add(app, s.key.UID)
		return true, nil
	}
	if minted, err := r.mintedLive(ctx, s); err != nil || minted {
		return false, err
	}
	if active >= limit {
		s.set(keywardv1alpha1.APIKeyRejected, ReasonLimitExceeded, fmt.Sprintf(
			"Application %s already has %d/%d active keys (maxKeysPerApplication of KeyGroup %s; revoked and expired keys do not count); "+
				"revoke or delete one of its keys, or raise the limit, then create a new APIKey",
			s.app.Name, active, limit, s.group.Name))
		return false, nil
	}
	// Older keys, and keys being minted, come first; whether this one
	// fits is known once they are issued (or fail).
	s.set(keywardv1alpha1.APIKeyPending, ReasonWaitingForOlderKeys, fmt.Sprintf(
		"Application %s has %d/%d active keys and %d older keys being issued first", s.app.Name, active, limit, waiting))
	s.requeueBy(s.now.Add(waitRequeue(s.now.Sub(s.key.CreationTimestamp.Time))))
	return false, nil
}

// nearLimit is how close to the limit the API server, not the cache,
// decides: a tenth of it, at most 10 keys. Only a cache that missed more
// mints than that (a leader handover in the same millisecond, say) could
// let a fast decision overshoot.
func nearLimit(limit int) int {
	return min(max(limit/10, 1), 10)
}

// waitRequeue is how soon a key (or an Application) that has waited this
// long for older ones looks again: every second at first, while a burst is
// issued, then a tenth of the time waited, at most every 30 seconds. Keys
// held behind one that cannot be issued (its delivery Secret in the way)
// would otherwise each ask the API server for the Application's keys every
// second, for as long as that lasts.
func waitRequeue(waited time.Duration) time.Duration {
	return min(max(waited/10, time.Second), 30*time.Second)
}

// conflictRequeue is how soon a key whose delivery Secret is someone
// else's looks again: that Secret is not watched.
const conflictRequeue = 30 * time.Second

// slots counts, the key itself aside, the keys of its application that
// hold a slot against maxKeysPerApplication (minted keys whose hashed
// Secret says active or disabled) and those that wait ahead of it (see
// countSlots). Revoked, expired and deleted keys do not count.
//
// From the cache (live false), through its book (index.Book), with this
// manager's reservations for what the cache does not show yet, the count
// can only be too high: the cache lags, never leads. Live, the hashed
// Secrets (what holds a slot) come from the API server, as metadata, and
// the count is exact for everything but this manager's mints in flight,
// which are counted from its reservations. The APIKeys always come from
// the book: it shows them in the order they were written, and admit waits
// until it shows this key, so every key that could wait ahead of this one
// is in it; one revoked or deleted since only makes the count too high. A
// slot is counted from its hashed Secret whether the book holds its APIKey
// yet or not. No list is copied: the book is read in place.
func (r *APIKeyReconciler) slots(ctx context.Context, s *apiKeyScope, app string, live bool) (active, waiting int, err error) {
	var states map[types.UID]record.State
	if live {
		if states, err = r.liveStates(ctx, s); err != nil {
			return 0, 0, fmt.Errorf("listing the hashed Secrets of Application %s: %w", app, err)
		}
	}
	r.book.Read(s.key.Namespace, s.app.Name, func(sib index.Siblings) {
		if live {
			reserved := r.reserved.unseen(app, func(uid types.UID) bool { _, ok := states[uid]; return ok }, false)
			active, waiting = r.countSlots(s, sib.Keys, states, reserved)
			return
		}
		// Reservations the cache shows are its to count from then on.
		reserved := r.reserved.unseen(app, func(uid types.UID) bool { _, ok := sib.Hashed[uid]; return ok }, true)
		active, waiting = countSlotsBooked(s, sib, reserved)
	})
	return active, waiting, nil
}

// liveStates maps the key UID of each hashed Secret of the application to
// its state, from the API server by label, as metadata only.
func (r *APIKeyReconciler) liveStates(ctx context.Context, s *apiKeyScope) (map[types.UID]record.State, error) {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := r.APIReader.List(ctx, &list, client.InNamespace(r.Namespace),
		client.MatchingLabels{record.LabelNamespace: s.key.Namespace, record.LabelApplication: s.app.Name}); err != nil {
		return nil, err
	}
	states := make(map[types.UID]record.State, len(list.Items))
	for i := range list.Items {
		l := list.Items[i].Labels
		states[types.UID(l[record.LabelAPIKeyUID])] = record.State(l[record.LabelState])
	}
	return states, nil
}

// countSlots counts the keys of s.key's application, itself aside, that
// occupy a slot and those that wait ahead of it: reserved ones, being
// minted or minted but not seen yet, and older ones not issued. Only a
// slot confirmed by a hashed Secret can turn a key away for good; a
// reservation whose mint fails must not have.
func (r *APIKeyReconciler) countSlots(s *apiKeyScope, siblings map[types.UID]*keywardv1alpha1.APIKey, states map[types.UID]record.State, reserved map[types.UID]struct{}) (active, waiting int) {
	for uid := range reserved {
		if uid != s.key.UID {
			waiting++
		}
	}
	return countActive(s, siblings, states, reserved), waiting + countOlderWaiting(s, siblings, states, reserved)
}

// countSlotsBooked counts what countSlots counts over the book's hashed
// Secrets, without looking at every key: from the book's count of hashed
// Secrets occupying a slot it takes away those that are reserved, this
// key's own, and those whose key has stopped counting (Stopping, and the
// expiring ones whose time has come); the keys waiting ahead are found
// among those not minted, oldest first, up to this one.
func countSlotsBooked(s *apiKeyScope, sib index.Siblings, reserved map[types.UID]struct{}) (active, waiting int) {
	for uid := range reserved {
		if uid != s.key.UID {
			waiting++
		}
	}
	return countActiveBooked(s, sib, reserved), waiting + countOlderWaitingBooked(s, sib, reserved)
}

// countActiveBooked is countActive from the book's counts.
func countActiveBooked(s *apiKeyScope, sib index.Siblings, reserved map[types.UID]struct{}) int {
	self := s.key.UID
	skip := func(uid types.UID) bool { _, ok := reserved[uid]; return ok || uid == self }
	occupies := func(uid types.UID) bool { st, ok := sib.Hashed[uid]; return ok && st.Occupying() }
	active := sib.Occupying
	for uid := range reserved {
		if occupies(uid) {
			active--
		}
	}
	if _, ok := reserved[self]; !ok && occupies(self) {
		active--
	}
	for uid := range sib.Stopping {
		if !skip(uid) {
			active--
		}
	}
	sib.AscendExpiring(func(k *keywardv1alpha1.APIKey) bool {
		if k.Spec.ExpiresAt.After(s.now) {
			return false
		}
		if !skip(k.UID) {
			active--
		}
		return true
	})
	return active
}

// countOlderWaitingBooked is countOlderWaiting over the book's keys not
// minted, oldest first, up to s.key.
func countOlderWaitingBooked(s *apiKeyScope, sib index.Siblings, reserved map[types.UID]struct{}) int {
	waiting := 0
	sib.AscendUnminted(func(o *keywardv1alpha1.APIKey) bool {
		if !rules.KeyCreatedBefore(o, s.key) {
			return false
		}
		if _, ok := reserved[o.UID]; !ok && o.UID != s.key.UID && !rules.KeyStopsCounting(o, s.now) && len(rules.MissingScopes(o, s.group)) == 0 {
			waiting++
		}
		return true
	})
	return waiting
}

// countActive counts the hashed Secrets whose state occupies a slot, but
// for s.key's own, reserved keys' (they wait) and keys whose APIKey is
// known to have stopped counting.
func countActive(s *apiKeyScope, siblings map[types.UID]*keywardv1alpha1.APIKey, states map[types.UID]record.State, reserved map[types.UID]struct{}) int {
	active := 0
	for uid, st := range states {
		if _, ok := reserved[uid]; ok || uid == s.key.UID || !st.Occupying() {
			continue
		}
		if k, ok := siblings[uid]; ok && rules.KeyStopsCounting(k, s.now) {
			continue
		}
		active++
	}
	return active
}

// countOlderWaiting counts the siblings older than s.key that are not
// issued yet, and will be: they come first.
func countOlderWaiting(s *apiKeyScope, siblings map[types.UID]*keywardv1alpha1.APIKey, states map[types.UID]record.State, reserved map[types.UID]struct{}) int {
	waiting := 0
	for uid, o := range siblings {
		if _, ok := reserved[uid]; ok || uid == s.key.UID {
			continue
		}
		if _, minted := states[uid]; minted || rules.KeyStopsCounting(o, s.now) {
			continue
		}
		if !o.Status.Phase.Terminal() && rules.KeyCreatedBefore(o, s.key) && len(rules.MissingScopes(o, s.group)) == 0 {
			waiting++
		}
	}
	return waiting
}

// publish keeps the hashed Secret's record in step with the phase.
func (r *APIKeyReconciler) publish(ctx context.Context, s *apiKeyScope) error {
	if !s.minted() {
		return nil
	}
	want, err := r.desiredRecord(s)
	if err != nil {
		return err
	}
	if hashedSecretUpToDate(s.hashed, want, string(s.key.UID)) {
		return nil
	}
	logf.FromContext(ctx).V(1).Info("Updating hashed Secret", "secret", s.hashed.Name, "state", want.State)
	secret, err := r.patchHashedSecret(ctx, s, want)
	if err != nil {
		return err
	}
	s.hashed = secret
	return nil
}

// stateOf is the hashed Secret state for an APIKey phase.
func stateOf(p keywardv1alpha1.APIKeyPhase) record.State {
	switch p {
	case keywardv1alpha1.APIKeyActive:
		return record.StateActive
	case keywardv1alpha1.APIKeyDisabled:
		return record.StateDisabled
	case keywardv1alpha1.APIKeyRevoked:
		return record.StateRevoked
	case keywardv1alpha1.APIKeyExpired:
		return record.StateExpired
	default:
		return record.StateRejected
	}
}
