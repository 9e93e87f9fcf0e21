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

// Package chart tests the Helm chart charts/keyward with the Helm that
// hack/helm.sh builds from the Go module proxy: helm lint of every
// documented variant; every variant's render sent to a real kube-apiserver
// as a server-side dry run, after the CRDs a variant needs (cert-manager's,
// prometheus-operator's) are installed from the Go modules that publish them;
// the chart rendering the same objects as kustomize's config/default (and
// its cert-manager and NetworkPolicy variants); and helm install into a
// fresh control plane. The chart's copies of config/ (files/) are checked
// byte for byte.
package chart
