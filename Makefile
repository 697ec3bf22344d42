# Two commands set everything up on a fresh machine:
#   make demo   creates .venv, installs taskspace, runs the main job on the embedded digits
#   make test   creates .venv, installs taskspace with its test and docs extras, runs ruff, mypy,
#               the documentation build (mkdocs --strict) and the tests
VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= runs/demo

.PHONY: demo test test-kernels lint docs benchmarks clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet $(TORCH_SPEC)
	$(VENV)/bin/python -m pip install --quiet -e '.[test,docs]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/taskspace demo --out $(DEMO_OUT)

test: lint
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir build/site
	$(VENV)/bin/python -m pytest -q

# the numeric tests with OpenBLAS's (and MKL's) kernels of other processor families: a tolerance tighter
# than the arithmetic fails here before it fails on another machine (docs/development.md)
NUMERIC_TESTS ?= tests/test_scoring_*.py tests/test_similarity.py tests/test_objectives.py tests/test_analysis.py \
	tests/test_kernels.py tests/test_structure_*.py tests/test_matrix.py tests/test_recommend.py
test-kernels: $(VENV)/.installed
	for kernel in Sandybridge Prescott Zen Haswell; do \
		echo "OPENBLAS_CORETYPE=$$kernel"; \
		OPENBLAS_CORETYPE=$$kernel MKL_ENABLE_INSTRUCTIONS=SSE4_2 $(VENV)/bin/python -m pytest -q -p no:cacheprovider $(NUMERIC_TESTS) || exit 1; \
	done

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check taskspace
	$(VENV)/bin/mypy

# the documentation site: generated pages from the code and benchmarks/results/*.json, then mkdocs
docs: $(VENV)/.installed
	$(VENV)/bin/python docs/generate.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) runs
