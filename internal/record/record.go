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

// Package record defines the verification record that a hashed Secret holds:
// its name, labels and data keys. The manager writes it; the verifier reads
// it. It holds no key material but the SHA-256 digest.
package record

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/keys"
)

// Labels on every hashed Secret. The verifier and the manager select on
// LabelHashedKey; the others let an operator find a key's Secret with
// kubectl and let the manager count an application's keys from metadata.
const (
	LabelHashedKey   = "keyward.dev/hashed-key"
	LabelNamespace   = "keyward.dev/namespace"
	LabelKeyGroup    = "keyward.dev/key-group"
	LabelApplication = "keyward.dev/application"
	LabelAPIKey      = "keyward.dev/apikey"
	LabelAPIKeyUID   = "keyward.dev/apikey-uid"
	LabelState       = "keyward.dev/state"
	// LabelKeyGroupRef names the key's namespace and KeyGroup together
	// (GroupRef), so that a verifier shard selects exactly its groups'
	// keys at the API server: selecting on LabelNamespace and
	// LabelKeyGroup apart would match their cross product.
	LabelKeyGroupRef = "keyward.dev/key-group-ref"
)

// GroupRef is the LabelKeyGroupRef value of the KeyGroup name in namespace:
// 32 hex digits of the SHA-256 of "<namespace>/<name>", a valid label value
// whatever the names' lengths.
func GroupRef(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	return hex.EncodeToString(sum[:16])
}

// Data keys of a hashed Secret.
const (
	DataDigest       = "digest"
	DataKeyID        = "key-id"
	DataNamespace    = "namespace"
	DataKeyGroup     = "key-group"
	DataApplication  = "application"
	DataAPIKey       = "apikey"
	DataExternalID   = "external-id"
	DataScopes       = "scopes"
	DataState        = "state"
	DataExpiresAt    = "expires-at"
	DataSourceRanges = "source-ranges"
	// DataApplicationUID and DataKeyGroupUID are the UIDs of the
	// Application and KeyGroup the key was minted under. Records written
	// before they existed lack them; the manager adds them.
	DataApplicationUID = "application-uid"
	DataKeyGroupUID    = "keygroup-uid"
	// DataIssuedAt is when the current key was minted; records written
	// before it existed lack it (the Secret's creation time stands in).
	DataIssuedAt = "issued-at"
	// The key the last rotation replaced: its digest, key ID and the end
	// of its overlap, kept until the next rotation so that the verifiers
	// answer "expired" for it afterwards. A verifier that does not know
	// these keys still reads the record, and accepts the current key.
	DataPreviousDigest = "previous-digest"
	DataPreviousKeyID  = "previous-key-id"
	DataPreviousEndsAt = "previous-ends-at"
	// DataRotating is "true" from the moment a rotation's successor is
	// live until it is promoted in the delivery Secret.
	DataRotating = "rotating"
	// DataRotateRequests are the keyward.dev/rotate values handled, most
	// recent last, each as RequestHash: the same value applied again never
	// rotates again.
	DataRotateRequests = "rotate-requests"
)

// rotatingValue is DataRotating's value while a rotation is under way.
const rotatingValue = "true"

// MaxRotateRequests is how many handled keyward.dev/rotate values a record
// remembers.
const MaxRotateRequests = 8

// RequestHash is how a record remembers a keyward.dev/rotate value: 16 hex
// digits of its SHA-256, a fixed size whatever the value.
func RequestHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:8])
}

// Handled reports whether the keyward.dev/rotate value v was handled.
func (r *Record) Handled(v string) bool {
	return slices.Contains(r.RotateRequests, RequestHash(v))
}

// AddRequest remembers v as handled, forgetting the oldest beyond
// MaxRotateRequests.
func (r *Record) AddRequest(v string) {
	if r.Handled(v) {
		return
	}
	r.RotateRequests = append(r.RotateRequests, RequestHash(v))
	if n := len(r.RotateRequests); n > MaxRotateRequests {
		r.RotateRequests = slices.Clone(r.RotateRequests[n-MaxRotateRequests:])
	}
}

// Previous is the key a rotation replaced, kept working until EndsAt.
type Previous struct {
	Digest keys.Digest
	KeyID  string
	EndsAt time.Time
}

// PreviousEnd is when the previous key stops working: the end of its
// overlap, or the record's own end (the APIKey's expiresAt) if sooner. Zero
// when the record has no previous key. The verifier holds the previous key
// to it; status and the kubectl plugin report it.
func (r *Record) PreviousEnd() time.Time {
	p := r.Previous
	if p == nil {
		return time.Time{}
	}
	if !r.ExpiresAt.IsZero() && r.ExpiresAt.Before(p.EndsAt) {
		return r.ExpiresAt
	}
	return p.EndsAt
}

// Data keys of a delivery Secret.
const (
	DeliveryAPIKey = "api-key"
	DeliveryKeyID  = "key-id"
)

// State is whether a key works, and if not, why.
type State string

// The states of a hashed key.
const (
	StateActive   State = "active"
	StateDisabled State = "disabled"
	StateRevoked  State = "revoked"
	StateExpired  State = "expired"
	StateRejected State = "rejected"
)

// Occupying reports whether a key in this state counts against its
// application's maxKeysPerApplication.
func (s State) Occupying() bool { return s == StateActive || s == StateDisabled }

func (s State) valid() bool {
	switch s {
	case StateActive, StateDisabled, StateRevoked, StateExpired, StateRejected:
		return true
	}
	return false
}

// IsHashed reports whether labels are those of a hashed Secret.
func IsHashed(labels map[string]string) bool { return labels[LabelHashedKey] == "true" }

// SecretName is the name of the hashed Secret of the APIKey with this UID.
// The UID makes it unique across namespaces and across an APIKey deleted and
// created again under the same name.
func SecretName(apiKeyUID string) string { return "apikey-" + apiKeyUID }

// Record is what the verifier needs to answer for one key.
type Record struct {
	Digest      keys.Digest
	KeyID       string
	Namespace   string
	KeyGroup    string
	Application string
	APIKey      string
	ExternalID  string
	Scopes      []string
	State       State
	// ExpiresAt is zero for a key that never expires.
	ExpiresAt time.Time
	// SourceRanges are the key's own; nil means the group's apply.
	SourceRanges []netip.Prefix
	// ApplicationUID and KeyGroupUID bind the key to its parents; empty in
	// a record written before binding existed.
	ApplicationUID, KeyGroupUID string
	// IssuedAt is when the current key was minted; zero in a record
	// written before it was recorded.
	IssuedAt time.Time
	// Previous is the key the last rotation replaced; nil before the
	// first rotation.
	Previous *Previous
	// Rotating: the current key is live but not yet promoted in the
	// delivery Secret.
	Rotating bool
	// RotateRequests are RequestHashes of the keyward.dev/rotate values
	// handled.
	RotateRequests []string
}

// Data encodes the record as Secret data.
func (r *Record) Data() map[string]string {
	d := map[string]string{
		DataDigest:      r.Digest.String(),
		DataKeyID:       r.KeyID,
		DataNamespace:   r.Namespace,
		DataKeyGroup:    r.KeyGroup,
		DataApplication: r.Application,
		DataAPIKey:      r.APIKey,
		DataScopes:      strings.Join(r.Scopes, ","),
		DataState:       string(r.State),
	}
	if r.ExternalID != "" {
		d[DataExternalID] = r.ExternalID
	}
	if r.ApplicationUID != "" {
		d[DataApplicationUID] = r.ApplicationUID
	}
	if r.KeyGroupUID != "" {
		d[DataKeyGroupUID] = r.KeyGroupUID
	}
	if !r.ExpiresAt.IsZero() {
		d[DataExpiresAt] = r.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if !r.IssuedAt.IsZero() {
		d[DataIssuedAt] = r.IssuedAt.UTC().Format(time.RFC3339)
	}
	if p := r.Previous; p != nil {
		d[DataPreviousDigest] = p.Digest.String()
		d[DataPreviousKeyID] = p.KeyID
		d[DataPreviousEndsAt] = p.EndsAt.UTC().Format(time.RFC3339)
	}
	if r.Rotating {
		d[DataRotating] = rotatingValue
	}
	if len(r.RotateRequests) > 0 {
		d[DataRotateRequests] = strings.Join(r.RotateRequests, ",")
	}
	if r.SourceRanges != nil {
		s := make([]string, len(r.SourceRanges))
		for i, p := range r.SourceRanges {
			s[i] = p.String()
		}
		d[DataSourceRanges] = strings.Join(s, ",")
	}
	return d
}

// SecretData is Data as a Secret's data.
func (r *Record) SecretData() map[string][]byte {
	d := r.Data()
	out := make(map[string][]byte, len(d))
	for k, v := range d {
		out[k] = []byte(v)
	}
	return out
}

// Labels returns the labels of the record's Secret.
func (r *Record) Labels(apiKeyUID string) map[string]string {
	return map[string]string{
		LabelHashedKey:   "true",
		LabelNamespace:   r.Namespace,
		LabelKeyGroup:    r.KeyGroup,
		LabelApplication: r.Application,
		LabelAPIKey:      r.APIKey,
		LabelAPIKeyUID:   apiKeyUID,
		LabelState:       string(r.State),
		LabelKeyGroupRef: GroupRef(r.Namespace, r.KeyGroup),
	}
}

// ErrInvalid wraps every decoding error. Messages name the data key that is
// wrong, never its value.
var ErrInvalid = errors.New("invalid verification record")

// Decode reads a record from Secret data. Every field is checked, since a
// record that fails to decode must never let a request through.
func Decode(data map[string][]byte) (*Record, error) {
	get := func(k string) string { return string(data[k]) }
	r := &Record{
		KeyID:       get(DataKeyID),
		Namespace:   get(DataNamespace),
		KeyGroup:    get(DataKeyGroup),
		Application: get(DataApplication),
		APIKey:      get(DataAPIKey),
		ExternalID:  get(DataExternalID),
		State:       State(get(DataState)),

		ApplicationUID: get(DataApplicationUID),
		KeyGroupUID:    get(DataKeyGroupUID),
	}
	d, err := keys.ParseDigest(get(DataDigest))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, DataDigest, err)
	}
	r.Digest = d
	for _, f := range []struct{ key, val string }{
		{DataNamespace, r.Namespace}, {DataKeyGroup, r.KeyGroup}, {DataApplication, r.Application}, {DataAPIKey, r.APIKey}, {DataKeyID, r.KeyID},
	} {
		if f.val == "" {
			return nil, fmt.Errorf("%w: %s is missing", ErrInvalid, f.key)
		}
	}
	if !r.State.valid() {
		return nil, fmt.Errorf("%w: %s must be one of active, disabled, revoked, expired, rejected", ErrInvalid, DataState)
	}
	if s := get(DataScopes); s != "" {
		r.Scopes = strings.Split(s, ",")
	}
	for _, f := range []struct {
		key string
		to  *time.Time
	}{{DataExpiresAt, &r.ExpiresAt}, {DataIssuedAt, &r.IssuedAt}} {
		if s := get(f.key); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, fmt.Errorf("%w: %s must be an RFC 3339 time", ErrInvalid, f.key)
			}
			*f.to = t
		}
	}
	p, err := decodePrevious(get)
	if err != nil {
		return nil, err
	}
	r.Previous = p
	r.Rotating = get(DataRotating) == rotatingValue
	if s := get(DataRotateRequests); s != "" {
		r.RotateRequests = strings.Split(s, ",")
	}
	if s, ok := data[DataSourceRanges]; ok {
		r.SourceRanges = []netip.Prefix{}
		if len(s) > 0 {
			for _, c := range strings.Split(string(s), ",") {
				p, err := netip.ParsePrefix(c)
				if err != nil {
					return nil, fmt.Errorf("%w: %s must be a comma-separated list of CIDRs", ErrInvalid, DataSourceRanges)
				}
				r.SourceRanges = append(r.SourceRanges, p.Masked())
			}
		}
	}
	return r, nil
}

// decodePrevious reads the previous key of a rotation: all three of its
// data keys, or none.
func decodePrevious(get func(string) string) (*Previous, error) {
	digest, id, ends := get(DataPreviousDigest), get(DataPreviousKeyID), get(DataPreviousEndsAt)
	if digest == "" && id == "" && ends == "" {
		return nil, nil
	}
	d, err := keys.ParseDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, DataPreviousDigest, err)
	}
	if id == "" {
		return nil, fmt.Errorf("%w: %s is missing", ErrInvalid, DataPreviousKeyID)
	}
	t, err := time.Parse(time.RFC3339, ends)
	if err != nil {
		return nil, fmt.Errorf("%w: %s must be an RFC 3339 time", ErrInvalid, DataPreviousEndsAt)
	}
	return &Previous{Digest: d, KeyID: id, EndsAt: t}, nil
}
