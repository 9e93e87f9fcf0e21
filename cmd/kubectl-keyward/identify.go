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

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/internal/record"
)

// Generations of a key an APIKey holds: during a rotation's overlap, its
// hashed record answers to the current key and to the previous one.
const (
	generationCurrent  = "current"
	generationPrevious = "previous"
)

// Phases identify reports for a key whose APIKey it cannot show.
const (
	phaseDeleted  = "<APIKey deleted>"
	phaseReplaced = "<APIKey replaced>"
)

// listPageSize is how many hashed Secrets one list request reads.
const listPageSize = 500

// errUnknownKey: a well-formed key that no hashed Secret holds.
var errUnknownKey = errors.New("no hashed Secret holds this key: it was never issued by this cluster's keyward, or its APIKey was deleted; it does not verify here")

// identity is what identify tells about a key. It holds nothing secret.
type identity struct {
	Namespace   string `json:"namespace"`
	APIKey      string `json:"apiKey"`
	Application string `json:"application"`
	KeyGroup    string `json:"keyGroup"`
	ExternalID  string `json:"externalID,omitempty"`
	KeyID       string `json:"keyID"`
	// Generation is current, or previous for the key a rotation replaced
	// while it still works.
	Generation string `json:"generation"`
	// Phase is the APIKey's status.phase; State is its hashed record's.
	Phase        string       `json:"phase"`
	State        string       `json:"state"`
	LastUsedTime *metav1.Time `json:"lastUsedTime,omitempty"`
	// ExpiresAt is when this key stops working: the APIKey's expiry, or
	// for the previous generation the end of the rotation's overlap.
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	CreatedBy string       `json:"createdBy,omitempty"`
	// HashedSecret is the record's Secret in the operator's namespace.
	HashedSecret string `json:"hashedSecret"`

	// uid is the APIKey's, from the record; apiKeyFound says whether that
	// APIKey still exists.
	uid         types.UID
	apiKeyFound bool
}

// found is a hashed record that holds a key's digest.
type found struct {
	secret     *corev1.Secret
	record     *record.Record
	generation generation
}

// generation is one key a hashed record answers to.
type generation struct {
	name   string
	digest keys.Digest
	keyID  string
	// endsAt is when this key stops working; zero for never.
	endsAt time.Time
}

// generations lists the keys a record answers to: the current one and,
// once a rotation replaced it, the previous one until its end (the
// verifier refuses it after; identify still names its APIKey).
func generations(r *record.Record) []generation {
	g := []generation{{name: generationCurrent, digest: r.Digest, keyID: r.KeyID, endsAt: r.ExpiresAt}}
	if p := r.Previous; p != nil {
		g = append(g, generation{name: generationPrevious, digest: p.Digest, keyID: p.KeyID, endsAt: r.PreviousEnd()})
	}
	return g
}

// findRecord looks for the hashed record holding digest d among the hashed
// Secrets of the operator's namespace. Only the digest is compared; the
// key itself is never sent.
func findRecord(ctx context.Context, c client.Client, operatorNS string, d keys.Digest) (*found, error) {
	acc := access{verb: verbList, resource: resourceSecrets, namespace: operatorNS, hint: grantedByResponderRole}
	opts := []client.ListOption{
		client.InNamespace(operatorNS),
		client.MatchingLabels{record.LabelHashedKey: "true"},
		client.Limit(listPageSize),
	}
	var seen int
	hex := d.String()
	for cont := ""; ; {
		var list corev1.SecretList
		if err := c.List(ctx, &list, append(opts, client.Continue(cont))...); err != nil {
			return nil, acc.wrap(err)
		}
		seen += len(list.Items)
		for i := range list.Items {
			if f := matchRecord(&list.Items[i], d, hex); f != nil {
				return f, nil
			}
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	return nil, fmt.Errorf("%w (%d hashed Secrets read in namespace %q; see --operator-namespace)", errUnknownKey, seen, operatorNS)
}

// matchRecord returns the record of s if it answers to d, hex-encoded as
// hex. Only a Secret holding that value somewhere is decoded, since all
// records but one are read only to be passed over; generations decides
// which of its digests it is. A record that does not decode makes no key
// work at the verifier either.
func matchRecord(s *corev1.Secret, d keys.Digest, hex string) *found {
	if !holds(s.Data, hex) {
		return nil
	}
	r, err := record.Decode(s.Data)
	if err != nil {
		return nil
	}
	for _, g := range generations(r) {
		if g.digest == d {
			return &found{secret: s, record: r, generation: g}
		}
	}
	return nil
}

// holds reports whether one of the values of data is v.
func holds(data map[string][]byte, v string) bool {
	for _, b := range data {
		if string(b) == v {
			return true
		}
	}
	return false
}

// identify finds the key's record and its APIKey.
func identify(ctx context.Context, c client.Client, operatorNS string, k keys.Key) (*identity, error) {
	f, err := findRecord(ctx, c, operatorNS, k.Digest())
	if err != nil {
		return nil, err
	}
	r := f.record
	id := &identity{
		Namespace: r.Namespace, APIKey: r.APIKey, Application: r.Application, KeyGroup: r.KeyGroup,
		ExternalID: r.ExternalID, KeyID: f.generation.keyID, Generation: f.generation.name, State: string(r.State),
		HashedSecret: f.secret.Namespace + "/" + f.secret.Name,
		uid:          types.UID(f.secret.Labels[record.LabelAPIKeyUID]),
	}
	if ends := f.generation.endsAt; !ends.IsZero() {
		t := metav1.NewTime(ends)
		id.ExpiresAt = &t
	}
	var key keywardv1alpha1.APIKey
	err = c.Get(ctx, types.NamespacedName{Namespace: r.Namespace, Name: r.APIKey}, &key)
	switch {
	case apierrors.IsNotFound(err):
		id.Phase = phaseDeleted
		return id, nil
	case err != nil:
		acc := access{verb: verbGet, resource: resourceAPIKeys, namespace: r.Namespace, name: r.APIKey, hint: grantedByResponderClusterRole}
		return nil, fmt.Errorf("the key is %s's (APIKey %s/%s, key ID %s), but: %w", r.Application, r.Namespace, r.APIKey, id.KeyID, acc.wrap(err))
	case id.uid != "" && key.UID != id.uid:
		id.Phase = phaseReplaced
		return id, nil
	}
	id.uid, id.apiKeyFound = key.UID, true
	id.Phase, id.CreatedBy = string(key.Status.Phase), key.Status.CreatedBy
	id.LastUsedTime = key.Status.LastUsedTime
	if f.generation.name == generationPrevious && key.Status.Rotation != nil {
		id.LastUsedTime = key.Status.Rotation.PreviousKeyLastUsedTime
	}
	return id, nil
}

// gone says what happened to an APIKey identify could not find.
func (id *identity) gone() string {
	if id.Phase == phaseReplaced {
		return "was deleted and created again under its name"
	}
	return "was deleted"
}

// table is the identity as one row. The previous key of a rotation says
// when its overlap ends or ended: the APIKey's phase is its successor's.
func (id *identity) table(o *options) table {
	gen := id.Generation
	if gen == generationPrevious && id.ExpiresAt != nil {
		verb := "ends"
		if !id.ExpiresAt.After(o.now()) {
			verb = "ended"
		}
		gen += ", " + verb + " " + until(o.now(), id.ExpiresAt)
	}
	return table{
		header: []string{"NAMESPACE", "APIKEY", "APPLICATION", "KEYGROUP", "KEY-ID", "GENERATION", "PHASE", "LAST-USED"},
		rows: [][]string{{id.Namespace, id.APIKey, id.Application, id.KeyGroup, id.KeyID, gen,
			orNone(id.Phase), ago(o.now(), id.LastUsedTime)}},
	}
}

func newIdentifyCommand(o *options) *cobra.Command {
	var output, operatorNS string
	cmd := &cobra.Command{
		Use:   "identify",
		Short: "Say whose key a plaintext key on stdin is: namespace, APIKey, application, key group, phase, last use",
		Long: `Reads one key from stdin, checks its checksum, hashes it locally and looks
its SHA-256 digest up among the hashed Secrets of the operator's namespace.
The plaintext is never sent anywhere. Needs the keyward-responder roles.`,
		Example: `  pbpaste | kubectl keyward identify
  jq -r .Secret finding.json | kubectl keyward identify -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			k, err := readKey(o.streams.In, o.streams.ErrOut)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			id, err := identify(commandContext(cmd), c, operatorNS, k)
			if err != nil {
				return err
			}
			return write(o.streams.Out, output, id, id.table(o))
		},
	}
	addOutputFlag(cmd, &output)
	addOperatorNamespaceFlag(cmd, &operatorNS)
	return cmd
}

// addOperatorNamespaceFlag adds --operator-namespace, where the hashed
// Secrets are.
func addOperatorNamespaceFlag(cmd *cobra.Command, ns *string) {
	cmd.Flags().StringVar(ns, "operator-namespace", kube.DefaultNamespace, "the namespace keyward runs in, which holds the hashed Secrets")
}
