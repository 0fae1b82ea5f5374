package registry

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxCronJobNameLength leaves room for the suffix of the Jobs a CronJob
// creates (NAME-<minutes since the epoch>) within a DNS label.
const maxCronJobNameLength = 52

var cronJobResource = &Resource{
	Name:       "cronjobs",
	Singular:   "cronjob",
	Kind:       "CronJob",
	Group:      GroupBatch,
	ShortNames: []string{"cj"},
	Namespaced: true,
	HasStatus:  true,

	New:     func() runtime.Object { return &batchv1.CronJob{} },
	NewList: func() runtime.Object { return &batchv1.CronJobList{} },

	PrepareForCreate:       mutate(prepareCronJobForCreate),
	PrepareForUpdate:       mutatePair(prepareCronJobForUpdate),
	PrepareForStatusUpdate: mutatePair(prepareCronJobForStatusUpdate),

	ValidateCreate:       check(validateCronJob),
	ValidateUpdate:       checkPair(validateCronJobUpdate),
	ValidateStatusUpdate: checkPair(validateCronJobStatusUpdate),

	FieldSet: selectable(func(c *batchv1.CronJob) fields.Set { return metaFields(&c.ObjectMeta, nil) }),
	Columns:  cronJobColumns,
	Row:      printable(cronJobRow),
}

func init() { notScalable(cronJobResource) }

func prepareCronJobForCreate(c *batchv1.CronJob) {
	defaultCronJob(c)
	c.Generation = 1
	c.Status = batchv1.CronJobStatus{}
}

func prepareCronJobForUpdate(c, old *batchv1.CronJob) {
	defaultCronJob(c)
	c.Status = old.Status
	nextGeneration(&c.ObjectMeta, &old.ObjectMeta, c.Spec, old.Spec)
}

func prepareCronJobForStatusUpdate(c, old *batchv1.CronJob) {
	c.Spec = old.Spec
	c.Generation = old.Generation
}

// defaultCronJob applies upstream's defaults: concurrent runs allowed,
// not suspended, three successful and one failed Job kept.
func defaultCronJob(c *batchv1.CronJob) {
	s := &c.Spec
	if s.ConcurrencyPolicy == "" {
		s.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if s.Suspend == nil {
		s.Suspend = ptrTo(false)
	}
	if s.SuccessfulJobsHistoryLimit == nil {
		s.SuccessfulJobsHistoryLimit = ptrTo[int32](3)
	}
	if s.FailedJobsHistoryLimit == nil {
		s.FailedJobsHistoryLimit = ptrTo[int32](1)
	}
	defaultPodSpec(&s.JobTemplate.Spec.Template.Spec)
}

func validateCronJob(c *batchv1.CronJob) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	if len(c.Name) > maxCronJobNameLength {
		errs = append(errs, field.Invalid(metadataPath.Child("name"), c.Name, fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
	}
	return append(errs, validateCronJobSpec(&c.Spec)...)
}

func validateCronJobUpdate(c, old *batchv1.CronJob) field.ErrorList {
	errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateCronJobSpec(&c.Spec)...)
}

// validateCronJobSpec checks the schedule, time zone, policies and the
// Job template.
func validateCronJobSpec(s *batchv1.CronJobSpec) field.ErrorList {
	errs := validateSchedule(s.Schedule, specPath.Child("schedule"))
	if s.TimeZone != nil {
		if _, err := LoadTimeZone(s.TimeZone); err != nil {
			errs = append(errs, field.Invalid(specPath.Child("timeZone"), *s.TimeZone, err.Error()))
		}
	}
	errs = append(errs, validateEnum(s.ConcurrencyPolicy, specPath.Child("concurrencyPolicy"),
		batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent)...)
	if s.StartingDeadlineSeconds != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(*s.StartingDeadlineSeconds, specPath.Child("startingDeadlineSeconds"))...)
	}
	for _, l := range []struct {
		name string
		v    *int32
	}{{"successfulJobsHistoryLimit", s.SuccessfulJobsHistoryLimit}, {"failedJobsHistoryLimit", s.FailedJobsHistoryLimit}} {
		if l.v != nil {
			errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*l.v), specPath.Child(l.name))...)
		}
	}
	return append(errs, validateCronJobTemplate(&s.JobTemplate, specPath.Child("jobTemplate"))...)
}

// validateCronJobTemplate checks a CronJob's Job template; its selector is
// optional (each Job gets a generated one).
func validateCronJobTemplate(t *batchv1.JobTemplateSpec, path *field.Path) field.ErrorList {
	metaPath := path.Child("metadata")
	errs := v1validation.ValidateLabels(t.Labels, metaPath.Child("labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(t.Annotations, metaPath.Child("annotations"))...)
	sp := path.Child("spec")
	if t.Spec.Selector != nil {
		errs = append(errs, validateJobSelector(&t.Spec, sp)...)
	}
	return append(errs, validateJobSpec(&t.Spec, sp)...)
}

// validateSchedule requires a five-field or @ schedule without a time
// zone prefix (spec.timeZone is the place for that).
func validateSchedule(schedule string, path *field.Path) field.ErrorList {
	if schedule == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	if strings.Contains(schedule, "TZ") {
		return field.ErrorList{field.Invalid(path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")}
	}
	if _, err := ParseSchedule(schedule); err != nil {
		return field.ErrorList{field.Invalid(path, schedule, err.Error())}
	}
	return nil
}

// ParseSchedule parses a CronJob schedule as upstream does: five fields
// (minute hour day-of-month month day-of-week) or a macro such as
// @hourly or @every 1h.
func ParseSchedule(schedule string) (cron.Schedule, error) {
	return cron.ParseStandard(schedule)
}

// LoadTimeZone returns the location a CronJob's timeZone names; nil
// means the server's local time. "Local" is refused: the zone must be
// explicit.
func LoadTimeZone(tz *string) (*time.Location, error) {
	if tz == nil {
		return time.Local, nil
	}
	if *tz == "" || strings.EqualFold(*tz, "Local") {
		return nil, fmt.Errorf("unknown time zone %q", *tz)
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %s", *tz)
	}
	return loc, nil
}

func validateCronJobStatusUpdate(c, old *batchv1.CronJob) field.ErrorList {
	errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
	for i, ref := range c.Status.Active {
		if ref.Name == "" {
			errs = append(errs, field.Required(statusPath.Child("active").Index(i).Child("name"), ""))
		}
	}
	return errs
}

var cronJobColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Schedule", "string", batchv1.CronJobSpec{}.SwaggerDoc()["schedule"], false),
	column("Timezone", "string", batchv1.CronJobSpec{}.SwaggerDoc()["timeZone"], false),
	column("Suspend", "boolean", batchv1.CronJobSpec{}.SwaggerDoc()["suspend"], false),
	column("Active", "integer", batchv1.CronJobStatus{}.SwaggerDoc()["active"], false),
	column("Last Schedule", "date", batchv1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"], false),
	ageColumn(),
	column("Containers", "string", "Names of each container in the template.", true),
	column("Images", "string", "Images referenced by each container in the template.", true),
	column("Selector", "string", batchv1.JobSpec{}.SwaggerDoc()["selector"], true),
}

func cronJobRow(c *batchv1.CronJob, now time.Time) []interface{} {
	tz, last := "<none>", "<none>"
	if c.Spec.TimeZone != nil {
		tz = *c.Spec.TimeZone
	}
	if t := c.Status.LastScheduleTime; t != nil {
		last = since(t.Time, now)
	}
	names, images := containerCells(c.Spec.JobTemplate.Spec.Template.Spec.Containers)
	selector := "<none>"
	if sel, err := metav1.LabelSelectorAsSelector(c.Spec.JobTemplate.Spec.Selector); err == nil && c.Spec.JobTemplate.Spec.Selector != nil && !sel.Empty() {
		selector = sel.String()
	}
	return []interface{}{
		c.Name, c.Spec.Schedule, tz, c.Spec.Suspend != nil && *c.Spec.Suspend, int64(len(c.Status.Active)), last,
		since(c.CreationTimestamp.Time, now), names, images, selector,
	}
}
