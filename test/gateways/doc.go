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

// Package gateways checks the gateway guides of docs/gateways: every
// manifest under docs/gateways/manifests is sent to a real kube-apiserver
// as a server-side dry run, with strict field validation, after the
// gateway's own CRDs have been installed from the Go module that publishes
// them (fetched with `go mod download`, never added to keyward's go.mod).
// The pinned module versions live in one table, crdSources; each guide must
// name the module versions its manifests were checked against.
package gateways
