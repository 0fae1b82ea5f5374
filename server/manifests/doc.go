// Package manifests applies the manifest files of a server's
// DATA/server/manifests directory to the cluster and keeps them applied:
// every *.yaml, *.yml and *.json file there, at start and whenever its
// content changes (the directory is read every few seconds and each
// file's SHA-256 compared with the last one applied).
//
// # Applying
//
// A file holds YAML documents separated by `---` lines (a .json file is one
// document); a document of kind List stands for its items. Objects are
// applied in file order with server-side apply, forced, under the field
// manager "minik-manifests", through the API's loopback (so validation,
// admission and defaults are those of any client). Each carries the
// annotation minik.dev/manifest naming its file. Before anything is
// applied, the API checks every object with a dry run: a file that does
// not parse, or one object of which is refused, changes nothing. (Objects
// of a kind, or in a namespace, that the same file creates can only be
// checked when applied; a refusal there leaves the objects before them
// applied and deletes nothing.) A failure that may pass, such as a kind
// not served yet, is retried at every read of the directory.
//
// # Records
//
// What a file applied is recorded in a ConfigMap in kube-system,
// manifest-FILE (labelled minik.dev/manifest-record=true): the resource,
// namespace, name and UID of each object, and whether the file created it.
// When an object leaves its file, or the file leaves the directory, the
// objects the file created are deleted (with their UID as precondition, so
// an object replaced by hand since is left alone); objects that existed
// before the file applied to them are left, with the fields it set.
//
// # Events
//
// Every outcome is an Event in kube-system whose involved object is the
// file's record: Applied (Normal), ApplyFailed (Warning, naming the file,
// the document, its first line and the error), DeleteFailed (Warning) and
// Removed (Normal). `minik get events -n kube-system` lists them.
//
// Only the leading server applies manifests, from its own directory.
package manifests
