// Added to fake-gcs-server by kbackup's test environment (xtask/testenv/build.sh): the XML
// API's object upload, which Google Cloud Storage serves and the emulator routes to its JSON
// upload handler (answering "invalid uploadType"). A PUT of /BUCKET/OBJECT stores the body,
// honours the x-goog-if-generation-match precondition (0: only when absent) and answers with
// the ETag and x-goog-generation headers clients read.
package fakestorage

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
)

func (s *Server) xmlPutObject(bucketName string, r *http.Request) jsonResponse {
	defer r.Body.Close()
	name := unescapeMuxVars(mux.Vars(r))["objectName"]
	conditions := generationCondition{}
	if value := r.Header.Get("x-goog-if-generation-match"); value != "" {
		generation, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return jsonResponse{status: http.StatusBadRequest, errorMessage: err.Error()}
		}
		conditions.ifGenerationMatch = &generation
	}
	metadata := make(map[string]string)
	for key := range r.Header {
		lower := strings.ToLower(key)
		if name := strings.TrimPrefix(lower, "x-goog-meta-"); name != lower {
			metadata[name] = r.Header.Get(key)
		}
	}
	obj := StreamingObject{
		ObjectAttrs: ObjectAttrs{
			BucketName:  bucketName,
			Name:        name,
			ContentType: r.Header.Get(contentTypeHeader),
			Metadata:    metadata,
		},
		Content: notImplementedSeeker{r.Body},
	}
	obj, err := s.createObject(obj, conditions)
	if err != nil {
		return errToJsonResponse(err)
	}
	obj.Close()
	header := http.Header{}
	header.Set("ETag", fmt.Sprintf("%q", obj.Etag))
	header.Set("x-goog-generation", strconv.FormatInt(obj.Generation, 10))
	return jsonResponse{header: header}
}
