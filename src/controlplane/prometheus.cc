#include "l4lb/controlplane/prometheus.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace l4lb::controlplane {

namespace {

bool is_alpha_or_underscore(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// HELP text escapes only backslash and newline; a double quote stays as is
// (exposition format 0.0.4, "Comments, help text, and type information").
void append_help(std::string& out, std::string_view text) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// Label values also escape the double quote that would end them.
void append_label_value(std::string& out, std::string_view text) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

template <typename T>
void append_number(std::string& out, T value) {
  char buf[32];  // enough for any int64/uint64 and the shortest double form
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  (void)ec;  // cannot fail with this buffer size
  out.append(buf, end);
}

bool valid_type(std::string_view type) {
  return type == "counter" || type == "gauge" || type == "untyped" || type == "histogram" ||
         type == "summary";
}

}  // namespace

bool PrometheusWriter::valid_metric_name(std::string_view name) {
  if (name.empty() || !(is_alpha_or_underscore(name[0]) || name[0] == ':')) return false;
  for (char c : name)
    if (!(is_alpha_or_underscore(c) || is_digit(c) || c == ':')) return false;
  return true;
}

bool PrometheusWriter::valid_label_name(std::string_view name) {
  if (name.empty() || !is_alpha_or_underscore(name[0])) return false;
  for (char c : name)
    if (!(is_alpha_or_underscore(c) || is_digit(c))) return false;
  return true;
}

void PrometheusWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  if (!valid_metric_name(name))
    throw std::invalid_argument("prometheus: invalid metric name '" + std::string(name) + "'");
  if (!valid_type(type))
    throw std::invalid_argument("prometheus: invalid type '" + std::string(type) + "' for metric '" +
                                std::string(name) + "'");
  if (name == current_family_) return;
  if (!families_.emplace(name).second)
    throw std::logic_error("prometheus: family '" + std::string(name) +
                           "' started again after another family; its samples must be contiguous");
  current_family_ = name;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  append_help(out_, help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusWriter::begin_sample(std::string_view name, std::initializer_list<Label> labels) {
  if (!valid_metric_name(name))
    throw std::invalid_argument("prometheus: invalid metric name '" + std::string(name) + "'");
  // Validate everything before writing anything, so a throw leaves out_ whole.
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    if (!valid_label_name(it->first))
      throw std::invalid_argument("prometheus: invalid label name '" + std::string(it->first) +
                                  "' on metric '" + std::string(name) + "'");
    // Label sets are a handful of entries, so the quadratic check is cheapest.
    for (auto prev = labels.begin(); prev != it; ++prev)
      if (prev->first == it->first)
        throw std::invalid_argument("prometheus: label '" + std::string(it->first) +
                                    "' given twice on metric '" + std::string(name) + "'");
  }
  out_ += name;
  if (labels.size() != 0) {
    out_ += '{';
    bool first = true;
    for (const auto& [label, value] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += label;
      out_ += "=\"";
      append_label_value(out_, value);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
}

void PrometheusWriter::sample(std::string_view name, std::initializer_list<Label> labels, double value) {
  begin_sample(name, labels);
  // The format reads values with Go's ParseFloat, which wants these spellings.
  if (std::isnan(value)) {
    out_ += "NaN";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "+Inf" : "-Inf";
  } else {
    append_number(out_, value);
  }
  out_ += '\n';
}

void PrometheusWriter::sample_signed(std::string_view name, std::initializer_list<Label> labels,
                                     int64_t value) {
  begin_sample(name, labels);
  append_number(out_, value);
  out_ += '\n';
}

void PrometheusWriter::sample_unsigned(std::string_view name, std::initializer_list<Label> labels,
                                       uint64_t value) {
  begin_sample(name, labels);
  append_number(out_, value);
  out_ += '\n';
}

std::string PrometheusWriter::take() {
  std::string text = std::move(out_);
  out_.clear();
  current_family_.clear();
  families_.clear();
  return text;
}

}  // namespace l4lb::controlplane
