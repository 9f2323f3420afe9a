{{/* The chart name, or nameOverride. */}}
{{- define "kvcluster-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, or the release name (plus the chart
name unless the release name already contains it). Truncated to 63 characters, the DNS label limit.
*/}}
{{- define "kvcluster-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "kvcluster-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object of the release carries. */}}
{{- define "kvcluster-operator.labels" -}}
helm.sh/chart: {{ include "kvcluster-operator.chart" . }}
{{ include "kvcluster-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kvcluster
{{- end }}

{{/* The labels that select the operator pods (immutable once installed: keep them minimal). */}}
{{- define "kvcluster-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvcluster-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "kvcluster-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kvcluster-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "kvcluster-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The namespace the operator watches (scope namespaced), where its Role, RoleBinding and peering
object live; for scope cluster the release namespace (used for the example KVCluster).
*/}}
{{- define "kvcluster-operator.watchNamespace" -}}
{{- if and (eq .Values.watch.scope "namespaced") .Values.watch.namespace }}
{{- .Values.watch.namespace }}
{{- else }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the operator watches every namespace. */}}
{{- define "kvcluster-operator.clusterScoped" -}}
{{- if eq .Values.watch.scope "cluster" }}true{{ end }}
{{- end }}
