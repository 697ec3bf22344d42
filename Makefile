# Two commands set everything up on a fresh machine:
#   make demo   creates .venv, installs taskspace, runs the main job on the embedded digits
#   make test   creates .venv, installs taskspace with its test extras, runs ruff, mypy and the tests
VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= runs/demo

.PHONY: demo test lint benchmarks clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet $(TORCH_SPEC)
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/taskspace demo --out $(DEMO_OUT)

test: lint
	$(VENV)/bin/python -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check taskspace
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs
