{{- define "packflow-worker.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "packflow-worker.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "packflow-worker.labels" -}}
{{ include "packflow-worker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "packflow-worker.maxReplicas" -}}
{{- $partitions := int .Values.keda.inputPartitions -}}
{{- $max := int (default $partitions .Values.keda.maxReplicaCount) -}}
{{- if gt $max $partitions -}}
{{- fail (printf "keda.maxReplicaCount %d is above keda.inputPartitions %d: replicas beyond the input partitions would sit idle" $max $partitions) -}}
{{- end -}}
{{- $max -}}
{{- end -}}
