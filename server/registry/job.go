package registry

import (
	"fmt"
	"math"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupBatch is the API group of Job and CronJob.
const GroupBatch = "batch"

// The labels a Job's generated selector is made of. Both forms of each
// are set, as upstream does, so that clients reading either find them.
const (
	LabelControllerUID       = "batch.kubernetes.io/controller-uid"
	LabelLegacyControllerUID = "controller-uid"
	LabelJobName             = "batch.kubernetes.io/job-name"
	LabelLegacyJobName       = "job-name"
)

// maxIndexedCompletions bounds completions and parallelism of an Indexed
// Job, as upstream does, so that completedIndexes stays small.
const maxIndexedCompletions = 100000

var jobResource = &Resource{
	Name:       "jobs",
	Singular:   "job",
	Kind:       "Job",
	Group:      GroupBatch,
	Namespaced: true,
	HasStatus:  true,

	New:     func() runtime.Object { return &batchv1.Job{} },
	NewList: func() runtime.Object { return &batchv1.JobList{} },

	PrepareForCreate:       mutate(prepareJobForCreate),
	PrepareForUpdate:       mutatePair(prepareJobForUpdate),
	PrepareForStatusUpdate: mutatePair(prepareJobForStatusUpdate),

	ValidateCreate:       check(validateJob),
	ValidateUpdate:       checkPair(validateJobUpdate),
	ValidateStatusUpdate: checkPair(validateJobStatusUpdate),

	FieldSet: selectable(jobFields),
	Columns:  jobColumns,
	Row:      printable(jobRow),
}

func init() { notScalable(jobResource) }

func prepareJobForCreate(j *batchv1.Job) {
	defaultJob(j)
	if j.Spec.ManualSelector == nil || !*j.Spec.ManualSelector {
		generateJobSelector(j)
	}
	j.Generation = 1
	j.Status = batchv1.JobStatus{}
}

func prepareJobForUpdate(j, old *batchv1.Job) {
	defaultJob(j)
	j.Status = old.Status
	nextGeneration(&j.ObjectMeta, &old.ObjectMeta, j.Spec, old.Spec)
}

func prepareJobForStatusUpdate(j, old *batchv1.Job) {
	j.Spec = old.Spec
	j.Generation = old.Generation
}

// defaultJob applies upstream's defaults: one completion and one pod at a
// time, six retries (unlimited with a per-index limit), NonIndexed, not
// suspended, and replacement of terminating pods only once they failed
// when a pod failure policy is set.
func defaultJob(j *batchv1.Job) {
	s := &j.Spec
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions = ptrTo[int32](1)
	}
	if s.Parallelism == nil {
		s.Parallelism = ptrTo[int32](1)
	}
	if s.BackoffLimit == nil {
		if s.BackoffLimitPerIndex != nil {
			s.BackoffLimit = ptrTo[int32](math.MaxInt32)
		} else {
			s.BackoffLimit = ptrTo[int32](6)
		}
	}
	if s.CompletionMode == nil {
		s.CompletionMode = ptrTo(batchv1.NonIndexedCompletion)
	}
	if s.Suspend == nil {
		s.Suspend = ptrTo(false)
	}
	if s.ManualSelector == nil {
		s.ManualSelector = ptrTo(false)
	}
	if s.PodReplacementPolicy == nil {
		if s.PodFailurePolicy != nil {
			s.PodReplacementPolicy = ptrTo(batchv1.Failed)
		} else {
			s.PodReplacementPolicy = ptrTo(batchv1.TerminatingOrFailed)
		}
	}
	if p := s.PodFailurePolicy; p != nil {
		for i := range p.Rules {
			for k := range p.Rules[i].OnPodConditions {
				if p.Rules[i].OnPodConditions[k].Status == "" {
					p.Rules[i].OnPodConditions[k].Status = corev1.ConditionTrue
				}
			}
		}
	}
	if len(j.Labels) == 0 {
		j.Labels = cloneLabels(s.Template.Labels)
	}
	defaultPodSpec(&s.Template.Spec)
}

// generateJobSelector labels the template with the Job's uid and name and
// selects on the uid, so that no other Job's pods can match.
func generateJobSelector(j *batchv1.Job) {
	t := &j.Spec.Template
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	uid := string(j.UID)
	t.Labels[LabelLegacyControllerUID] = uid
	t.Labels[LabelControllerUID] = uid
	t.Labels[LabelLegacyJobName] = j.Name
	t.Labels[LabelJobName] = j.Name
	j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{LabelControllerUID: uid}}
}

func cloneLabels(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func validateJob(j *batchv1.Job) field.ErrorList {
	errs := validateMeta(&j.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	if j.Spec.CompletionMode != nil && *j.Spec.CompletionMode == batchv1.IndexedCompletion {
		// Pod hostnames are NAME-INDEX: the name must be a DNS label.
		errs = append(errs, validateDNSLabel(j.Name, metadataPath.Child("name"))...)
	}
	errs = append(errs, validateJobSelector(&j.Spec, specPath)...)
	return append(errs, validateJobSpec(&j.Spec, specPath)...)
}

// validateJobSpec checks a Job's spec but its selector; path is where it
// sits ("spec", or "spec.jobTemplate.spec" in a CronJob).
func validateJobSpec(s *batchv1.JobSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, c := range []struct {
		name string
		v    *int32
	}{
		{"parallelism", s.Parallelism}, {"completions", s.Completions},
		{"backoffLimit", s.BackoffLimit}, {"ttlSecondsAfterFinished", s.TTLSecondsAfterFinished},
	} {
		if c.v != nil {
			errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*c.v), path.Child(c.name))...)
		}
	}
	if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds <= 0 {
		errs = append(errs, field.Invalid(path.Child("activeDeadlineSeconds"), *s.ActiveDeadlineSeconds, "must be greater than 0"))
	}
	errs = append(errs, validateJobCompletionMode(s, path)...)
	errs = append(errs, validateJobTemplate(s, path.Child("template"))...)
	if s.PodFailurePolicy != nil {
		errs = append(errs, validatePodFailurePolicy(s, path.Child("podFailurePolicy"))...)
	}
	if s.SuccessPolicy != nil {
		errs = append(errs, validateSuccessPolicy(s, path.Child("successPolicy"))...)
	}
	if s.PodReplacementPolicy != nil {
		errs = append(errs, validateEnum(*s.PodReplacementPolicy, path.Child("podReplacementPolicy"), batchv1.TerminatingOrFailed, batchv1.Failed)...)
		if s.PodFailurePolicy != nil && *s.PodReplacementPolicy != batchv1.Failed {
			errs = append(errs, field.NotSupported(path.Child("podReplacementPolicy"), *s.PodReplacementPolicy, []batchv1.PodReplacementPolicy{batchv1.Failed}))
		}
	}
	return errs
}

func validateJobCompletionMode(s *batchv1.JobSpec, path *field.Path) field.ErrorList {
	if s.CompletionMode == nil {
		return nil
	}
	errs := validateEnum(*s.CompletionMode, path.Child("completionMode"), batchv1.NonIndexedCompletion, batchv1.IndexedCompletion)
	indexed := *s.CompletionMode == batchv1.IndexedCompletion
	if indexed {
		if s.Completions == nil {
			errs = append(errs, field.Required(path.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
		} else if *s.Completions > maxIndexedCompletions {
			errs = append(errs, field.Invalid(path.Child("completions"), *s.Completions, fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxIndexedCompletions, batchv1.IndexedCompletion)))
		}
		if s.Parallelism != nil && *s.Parallelism > maxIndexedCompletions {
			errs = append(errs, field.Invalid(path.Child("parallelism"), *s.Parallelism, fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxIndexedCompletions, batchv1.IndexedCompletion)))
		}
	}
	if s.BackoffLimitPerIndex != nil {
		p := path.Child("backoffLimitPerIndex")
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*s.BackoffLimitPerIndex), p)...)
		if !indexed {
			errs = append(errs, field.Forbidden(p, "requires indexed completion mode"))
		}
	}
	if s.MaxFailedIndexes != nil {
		p := path.Child("maxFailedIndexes")
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*s.MaxFailedIndexes), p)...)
		if s.BackoffLimitPerIndex == nil {
			errs = append(errs, field.Required(path.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
		}
		if s.Completions != nil && *s.MaxFailedIndexes > *s.Completions {
			errs = append(errs, field.Invalid(p, *s.MaxFailedIndexes, "must be less than or equal to completions"))
		}
	}
	return errs
}

// validateJobSelector requires a valid selector that matches the
// template's labels.
func validateJobSelector(s *batchv1.JobSpec, path *field.Path) field.ErrorList {
	p := path.Child("selector")
	if s.Selector == nil {
		return field.ErrorList{field.Required(p, "")}
	}
	errs := v1validation.ValidateLabelSelector(s.Selector, v1validation.LabelSelectorValidationOptions{}, p)
	if len(errs) > 0 {
		return errs
	}
	sel, err := metav1.LabelSelectorAsSelector(s.Selector)
	if err != nil {
		return field.ErrorList{field.Invalid(p, s.Selector, err.Error())}
	}
	if sel.Empty() {
		return field.ErrorList{field.Invalid(p, s.Selector, "empty selector is invalid for job")}
	}
	if !sel.Matches(labels.Set(s.Template.Labels)) {
		errs = append(errs, field.Invalid(path.Child("template", "metadata", "labels"), s.Template.Labels, "`selector` does not match template `labels`"))
	}
	return errs
}

// validateJobTemplate checks the pod template: its pods must end, so
// restartPolicy is OnFailure or Never.
func validateJobTemplate(s *batchv1.JobSpec, path *field.Path) field.ErrorList {
	errs := validatePodTemplateSpec(&s.Template, path)
	rp := s.Template.Spec.RestartPolicy
	allowed := []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	if rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
		errs = append(errs, field.NotSupported(path.Child("spec", "restartPolicy"), rp, allowed))
	} else if s.PodFailurePolicy != nil && rp != corev1.RestartPolicyNever {
		errs = append(errs, field.Invalid(path.Child("spec", "restartPolicy"), rp, "only \"Never\" is supported when podFailurePolicy is specified"))
	}
	if s.BackoffLimitPerIndex != nil && rp != corev1.RestartPolicyNever {
		errs = append(errs, field.Invalid(path.Child("spec", "restartPolicy"), rp, "only \"Never\" is supported when backoffLimitPerIndex is specified"))
	}
	return errs
}

func validateJobUpdate(j, old *batchv1.Job) field.ErrorList {
	errs := validateMetaUpdate(&j.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateJobSelector(&j.Spec, specPath)...)
	errs = append(errs, validateJobSpec(&j.Spec, specPath)...)
	return append(errs, validateJobSpecUpdate(&j.Spec, &old.Spec, &old.Status)...)
}

// validateJobSpecUpdate applies upstream's immutability rules: the
// selector, completion mode, pod failure policy and per-index limit never
// change; completions change only together with parallelism in an
// Indexed Job (elastic scaling); the template changes only in scheduling
// directives of a suspended Job that never started.
func validateJobSpecUpdate(s, old *batchv1.JobSpec, st *batchv1.JobStatus) field.ErrorList {
	errs := apivalidation.ValidateImmutableField(s.Selector, old.Selector, specPath.Child("selector"))
	errs = append(errs, apivalidation.ValidateImmutableField(s.CompletionMode, old.CompletionMode, specPath.Child("completionMode"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(s.PodFailurePolicy, old.PodFailurePolicy, specPath.Child("podFailurePolicy"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(s.BackoffLimitPerIndex, old.BackoffLimitPerIndex, specPath.Child("backoffLimitPerIndex"))...)
	elastic := s.CompletionMode != nil && *s.CompletionMode == batchv1.IndexedCompletion &&
		s.Completions != nil && s.Parallelism != nil && old.Completions != nil && *s.Completions == *s.Parallelism
	if !elastic {
		errs = append(errs, apivalidation.ValidateImmutableField(s.Completions, old.Completions, specPath.Child("completions"))...)
	}
	tmpl := specPath.Child("template")
	if old.Suspend != nil && *old.Suspend && st.StartTime == nil {
		if !apiequality.Semantic.DeepEqual(schedulingFree(&s.Template), schedulingFree(&old.Template)) {
			errs = append(errs, field.Invalid(tmpl, s.Template, "only node affinity, node selector, tolerations, labels, annotations and scheduling gates may change in a suspended job that has not started"))
		}
		return errs
	}
	return append(errs, apivalidation.ValidateImmutableField(s.Template, old.Template, tmpl)...)
}

// schedulingFree is t without the fields a suspended Job may change.
func schedulingFree(t *corev1.PodTemplateSpec) *corev1.PodTemplateSpec {
	c := t.DeepCopy()
	c.Labels, c.Annotations = nil, nil
	c.Spec.NodeSelector, c.Spec.Tolerations, c.Spec.Affinity, c.Spec.SchedulingGates = nil, nil, nil, nil
	return c
}

func validateJobStatusUpdate(j, old *batchv1.Job) field.ErrorList {
	errs := validateMetaUpdate(&j.ObjectMeta, &old.ObjectMeta)
	st := &j.Status
	for _, c := range []struct {
		name string
		v    *int32
	}{
		{"active", &st.Active}, {"succeeded", &st.Succeeded}, {"failed", &st.Failed},
		{"ready", st.Ready}, {"terminating", st.Terminating},
	} {
		if c.v != nil {
			errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*c.v), statusPath.Child(c.name))...)
		}
	}
	if isJobFinished(&old.Status) && !isJobFinished(st) {
		errs = append(errs, field.Invalid(statusPath.Child("conditions"), st.Conditions, "cannot remove the Complete or Failed condition of a finished job"))
	}
	return errs
}

// isJobFinished reports whether st has a true Complete or Failed
// condition.
func isJobFinished(st *batchv1.JobStatus) bool {
	for _, c := range st.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func jobFields(j *batchv1.Job) fields.Set {
	return metaFields(&j.ObjectMeta, fields.Set{"status.successful": fmt.Sprint(j.Status.Succeeded)})
}

var jobColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Status", "string", "Status of the job.", false),
	column("Completions", "string", batchv1.JobStatus{}.SwaggerDoc()["succeeded"], false),
	column("Duration", "string", "Time required to complete the job.", false),
	ageColumn(),
	column("Containers", "string", "Names of each container in the template.", true),
	column("Images", "string", "Images referenced by each container in the template.", true),
	column("Selector", "string", batchv1.JobSpec{}.SwaggerDoc()["selector"], true),
}

func jobRow(j *batchv1.Job, now time.Time) []interface{} {
	names, images := containerCells(j.Spec.Template.Spec.Containers)
	sel, _ := metav1.LabelSelectorAsSelector(j.Spec.Selector)
	selector := "<none>"
	if sel != nil && !sel.Empty() {
		selector = sel.String()
	}
	return []interface{}{
		j.Name, jobStatusCell(j), jobCompletionsCell(j), jobDurationCell(j, now),
		since(j.CreationTimestamp.Time, now), names, images, selector,
	}
}

// jobStatusCell is kubectl's STATUS: the most telling condition.
func jobStatusCell(j *batchv1.Job) string {
	has := func(t batchv1.JobConditionType) bool {
		for _, c := range j.Status.Conditions {
			if c.Type == t && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}
	switch {
	case has(batchv1.JobComplete):
		return "Complete"
	case has(batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case has(batchv1.JobFailureTarget):
		return "FailureTarget"
	case has(batchv1.JobSuspended):
		return "Suspended"
	case has(batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}

func jobCompletionsCell(j *batchv1.Job) string {
	if j.Spec.Completions != nil {
		return fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	}
	if j.Spec.Parallelism != nil && *j.Spec.Parallelism > 1 {
		return fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *j.Spec.Parallelism)
	}
	return fmt.Sprintf("%d/1", j.Status.Succeeded)
}

func jobDurationCell(j *batchv1.Job, now time.Time) string {
	st := j.Status
	switch {
	case st.StartTime == nil:
		return ""
	case st.CompletionTime == nil:
		return duration.HumanDuration(now.Sub(st.StartTime.Time))
	}
	return duration.HumanDuration(st.CompletionTime.Sub(st.StartTime.Time))
}
