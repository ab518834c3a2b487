// Added to fake-gcs-server by kbackup's test environment (xtask/testenv/build.sh): the XML
// API's multipart upload (https://cloud.google.com/storage/docs/xml-api/post-object-multipart),
// which object_store's GCS client uses for large objects: POST ?uploads starts one, PUT
// ?partNumber=N&uploadId=ID adds a part, POST ?uploadId=ID (the parts listed in XML) makes
// the object of them, DELETE ?uploadId=ID drops them. Parts are kept in memory until then.
package fakestorage

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"

	"github.com/gorilla/mux"
)

type xmlUpload struct {
	bucket      string
	name        string
	contentType string
	parts       map[int][]byte
}

var xmlUploads = struct {
	sync.Mutex
	next    int
	uploads map[string]*xmlUpload
}{uploads: map[string]*xmlUpload{}}

// routeXMLMultipart registers the multipart routes ahead of the object routes.
func (s *Server) routeXMLMultipart(handler *mux.Router) {
	isMultipart := func(r *http.Request, _ *mux.RouteMatch) bool {
		query := r.URL.Query()
		return query.Has("uploads") || query.Has("uploadId")
	}
	handler.MatcherFunc(s.publicHostMatcher).MatcherFunc(isMultipart).
		Path("/{bucketName}/{objectName:.+}").HandlerFunc(s.xmlMultipart)
}

type bytesObject struct{ *bytes.Reader }

func (bytesObject) Close() error { return nil }

func (s *Server) xmlMultipart(w http.ResponseWriter, r *http.Request) {
	defer r.Body.Close()
	vars := unescapeMuxVars(mux.Vars(r))
	bucket, name := vars["bucketName"], vars["objectName"]
	query := r.URL.Query()
	fail := func(status int, message string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, "<Error><Code>%d</Code><Message>%s</Message></Error>", status, message)
	}
	if _, err := s.backend.GetBucket(bucket); err != nil {
		fail(http.StatusNotFound, "no such bucket")
		return
	}
	xmlUploads.Lock()
	defer xmlUploads.Unlock()
	if query.Has("uploads") && r.Method == http.MethodPost {
		xmlUploads.next++
		id := strconv.Itoa(xmlUploads.next)
		xmlUploads.uploads[id] = &xmlUpload{bucket: bucket, name: name,
			contentType: r.Header.Get(contentTypeHeader), parts: map[int][]byte{}}
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, "<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>", bucket, name, id)
		return
	}
	id := query.Get("uploadId")
	upload, found := xmlUploads.uploads[id]
	if !found || upload.bucket != bucket || upload.name != name {
		fail(http.StatusNotFound, "no such upload")
		return
	}
	switch r.Method {
	case http.MethodPut:
		number, err := strconv.Atoi(query.Get("partNumber"))
		if err != nil || number < 1 {
			fail(http.StatusBadRequest, "bad partNumber")
			return
		}
		data, err := io.ReadAll(r.Body)
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		upload.parts[number] = data
		sum := md5.Sum(data)
		w.Header().Set("ETag", fmt.Sprintf("%q", hex.EncodeToString(sum[:])))
	case http.MethodDelete:
		delete(xmlUploads.uploads, id)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPost:
		var listed struct {
			Parts []struct {
				PartNumber int `xml:"PartNumber"`
			} `xml:"Part"`
		}
		if err := xml.NewDecoder(r.Body).Decode(&listed); err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		numbers := make([]int, 0, len(listed.Parts))
		for _, part := range listed.Parts {
			if _, ok := upload.parts[part.PartNumber]; !ok {
				fail(http.StatusBadRequest, "no such part")
				return
			}
			numbers = append(numbers, part.PartNumber)
		}
		sort.Ints(numbers)
		var whole []byte
		for _, number := range numbers {
			whole = append(whole, upload.parts[number]...)
		}
		obj := StreamingObject{
			ObjectAttrs: ObjectAttrs{BucketName: bucket, Name: name, ContentType: upload.contentType},
			Content:     bytesObject{bytes.NewReader(whole)},
		}
		obj, err := s.createObject(obj, generationCondition{})
		if err != nil {
			fail(http.StatusInternalServerError, err.Error())
			return
		}
		obj.Close()
		delete(xmlUploads.uploads, id)
		w.Header().Set("x-goog-generation", strconv.FormatInt(obj.Generation, 10))
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, "<CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><ETag>%q</ETag></CompleteMultipartUploadResult>", bucket, name, obj.Etag)
	default:
		fail(http.StatusMethodNotAllowed, "method not allowed")
	}
}
