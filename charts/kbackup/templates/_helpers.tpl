{{- define "kbackup.name" -}}kbackup-operator{{- end -}}

{{- define "kbackup.labels" -}}
app.kubernetes.io/name: kbackup-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: kbackup
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kbackup.selector" -}}
app.kubernetes.io/name: kbackup-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kbackup.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
