{{/* Labels on every object: the app name plus .Values.commonLabels. */}}
{{- define "aws-ipv6-ccm.labels" -}}
app.kubernetes.io/name: aws-ipv6-ccm
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Name of the ServiceAccount the pods run as. */}}
{{- define "aws-ipv6-ccm.serviceAccountName" -}}
{{- required "serviceAccount.name is required" .Values.serviceAccount.name -}}
{{- end }}

{{/* Name of the ConfigMap holding cloud.conf. */}}
{{- define "aws-ipv6-ccm.cloudConfigName" -}}
{{- .Values.cloudConfig.existingConfigMap | default "aws-cloud-config" -}}
{{- end }}

{{/* Container image reference. */}}
{{- define "aws-ipv6-ccm.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end }}
