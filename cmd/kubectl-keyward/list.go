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
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

// keyRow is an APIKey as expiring and unused list it.
type keyRow struct {
	Namespace         string       `json:"namespace"`
	Name              string       `json:"name"`
	Application       string       `json:"application"`
	Phase             string       `json:"phase"`
	KeyID             string       `json:"keyID,omitempty"`
	ExpiresAt         *metav1.Time `json:"expiresAt,omitempty"`
	LastUsedTime      *metav1.Time `json:"lastUsedTime,omitempty"`
	CreationTimestamp metav1.Time  `json:"creationTimestamp"`
}

// keyColumns are the first columns of a listing.
var keyColumns = []string{"NAMESPACE", "NAME", "APPLICATION", "PHASE", "KEY-ID"}

// keyList is what -o json and -o yaml print.
type keyList struct {
	Items []keyRow `json:"items"`
}

// listFlags are the flags of the listing commands.
type listFlags struct {
	output        string
	allNamespaces bool
	window        time.Duration
}

func (f *listFlags) add(cmd *cobra.Command, name, def, usage string) {
	addOutputFlag(cmd, &f.output)
	cmd.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list the keys of every namespace")
	cmd.Flags().Var(newDurationValue(&f.window, def), name, usage)
}

func newExpiringCommand(o *options) *cobra.Command {
	f := &listFlags{}
	cmd := &cobra.Command{
		Use:   "expiring",
		Short: "List the keys that expire within a window (default 30d)",
		Long: `Lists Active and Disabled keys whose expiry (status.expiresAt, or
spec.expiresAt before the key is issued) falls within --within from now,
soonest first: the keys to replace before their consumers lose access. A
rotating key's next rotation is in status.rotation.nextRotationAt.`,
		Example: "  kubectl keyward expiring --within 30d -A",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := o.now()
			return o.listKeys(commandContext(cmd), f, func(k *keywardv1alpha1.APIKey) (keyRow, bool) {
				exp := expiresAt(k)
				ok := working(k) && exp != nil && !exp.Time.Before(now) && exp.Time.Before(now.Add(f.window))
				return row(k), ok
			}, func(a, b keyRow) int { return a.ExpiresAt.Compare(b.ExpiresAt.Time) },
				table{header: slices.Concat(keyColumns, []string{"EXPIRES"})},
				func(r keyRow) []string { return []string{until(now, r.ExpiresAt)} })
		},
	}
	f.add(cmd, "within", "30d", "how far ahead to look, in days or Go units: 30d, 36h")
	return cmd
}

func newUnusedCommand(o *options) *cobra.Command {
	f := &listFlags{}
	cmd := &cobra.Command{
		Use:   "unused",
		Short: "List the working keys not used for a while (default 90d), never-used ones older than that included",
		Long: `Lists Active and Disabled keys whose last use (either generation's, during a
rotation) is older than --for, and keys never used that were created longer
ago than that. Last use is written by the verifier at most once a minute.`,
		Example: "  kubectl keyward unused --for 90d -A -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := o.now()
			return o.listKeys(commandContext(cmd), f, func(k *keywardv1alpha1.APIKey) (keyRow, bool) {
				r := row(k)
				since := r.LastUsedTime
				if since == nil {
					since = &r.CreationTimestamp
				}
				return r, working(k) && since.Time.Before(now.Add(-f.window))
			}, func(a, b keyRow) int { return lastActivity(a).Compare(lastActivity(b)) },
				table{header: slices.Concat(keyColumns, []string{"LAST-USED", "AGE"})},
				func(r keyRow) []string { return []string{ago(now, r.LastUsedTime), ago(now, &r.CreationTimestamp)} })
		},
	}
	f.add(cmd, "for", "90d", "how long without a use, in days or Go units: 90d, 2160h")
	return cmd
}

// listKeys lists the APIKeys of the namespace (or all), keeps those keep
// says, sorted by cmp, and prints them: the table's last columns are
// what last gives.
func (o *options) listKeys(ctx context.Context, f *listFlags, keep func(*keywardv1alpha1.APIKey) (keyRow, bool),
	cmp func(a, b keyRow) int, t table, last func(keyRow) []string) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	cl, err := o.connect()
	if err != nil {
		return err
	}
	var opts []client.ListOption
	acc := access{verb: verbList, resource: resourceAPIKeys}
	if !f.allNamespaces {
		opts = append(opts, client.InNamespace(cl.namespace))
		acc.namespace = cl.namespace
	}
	var list keywardv1alpha1.APIKeyList
	if err := acc.wrap(cl.client.List(ctx, &list, opts...)); err != nil {
		return err
	}
	out := keyList{Items: []keyRow{}}
	for i := range list.Items {
		if r, ok := keep(&list.Items[i]); ok {
			out.Items = append(out.Items, r)
		}
	}
	slices.SortStableFunc(out.Items, cmp)
	for _, r := range out.Items {
		t.rows = append(t.rows, append([]string{r.Namespace, r.Name, r.Application, r.Phase, orNone(r.KeyID)}, last(r)...))
	}
	if len(out.Items) == 0 && f.output == outputTable {
		fmt.Fprintf(o.streams.ErrOut, "No keys found %s.\n", acc.where())
		return nil
	}
	return write(o.streams.Out, f.output, out, t)
}

// row is the key as listed. Its last use is the later of both generations'.
func row(k *keywardv1alpha1.APIKey) keyRow {
	return keyRow{
		Namespace: k.Namespace, Name: k.Name, Application: string(k.Spec.Application), Phase: string(k.Status.Phase),
		KeyID: k.Status.KeyID, ExpiresAt: expiresAt(k), LastUsedTime: k.LastUsed(), CreationTimestamp: k.CreationTimestamp,
	}
}

// expiresAt is when the key stops working: status, else spec.
func expiresAt(k *keywardv1alpha1.APIKey) *metav1.Time {
	if k.Status.ExpiresAt != nil {
		return k.Status.ExpiresAt
	}
	return k.Spec.ExpiresAt
}

// working reports whether a key is one to worry about: issued or about to
// be, and not ended for good.
func working(k *keywardv1alpha1.APIKey) bool {
	switch k.Status.Phase {
	case keywardv1alpha1.APIKeyActive, keywardv1alpha1.APIKeyDisabled:
		return true
	}
	return false
}

// lastActivity is when a listed key was last used, or created if never.
func lastActivity(r keyRow) time.Time {
	if r.LastUsedTime != nil {
		return r.LastUsedTime.Time
	}
	return r.CreationTimestamp.Time
}
