// flowstore console: a live run's new events, appended as text (never as markup).
(function () {
  "use strict";
  var table = document.getElementById("events");
  if (!table || table.dataset.live !== "true") {
    return;
  }
  var status = document.getElementById("live");
  var url = table.dataset.stream + "&from=" + encodeURIComponent(table.dataset.next);
  var source = new EventSource(url);
  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }
  source.addEventListener("run-event", function (message) {
    var e = JSON.parse(message.data);
    var row = document.createElement("tr");
    row.className = "new";
    cell(row, String(e.seq));
    cell(row, e.at);
    cell(row, e.what);
    table.appendChild(row);
    if (e.finished) {
      source.close();
      status.textContent = "finished: reload for the final timeline";
    }
  });
  source.addEventListener("stream-failed", function (message) {
    status.textContent = "the event stream failed: " + message.data;
    source.close();
  });
  status.textContent = "live: new events appear here";
})();
